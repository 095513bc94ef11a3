import { expect, test } from 'vitest';
import { decodeResponse, encodeRequest, ipv4, mac, readU32, readU64s, u32, u64 } from '../harness/agent/protocol.js';

test('requests are one flat JSON line', () => {
  expect(encodeRequest(3, 'map_lookup', { obj: 'o', map: 'm', key: u32(17) })).toBe('{"id":3,"op":"map_lookup","obj":"o","map":"m","key":"11000000"}\n');
  expect(() => encodeRequest(1, 'load', { path: { nested: 1 } } as never)).toThrow(/must be flat/);
});

test('responses must be well formed', () => {
  expect(decodeResponse('{"id":1,"ok":true,"sock":4}')).toEqual({ id: 1, ok: true, sock: 4 });
  expect(() => decodeResponse('not json')).toThrow(/not JSON/);
  expect(() => decodeResponse('{"ok":true}')).toThrow(/not a response/);
});

test('little-endian encodings round-trip', () => {
  expect(u32(1)).toBe('01000000');
  expect(u64(2n ** 40n)).toBe('0000000000010000');
  expect(readU32('ffffffff')).toBe(4294967295);
  expect(readU64s(u64(5) + u64(1500))).toEqual([5n, 1500n]);
});

test('MAC and IPv4 addresses are their bytes in wire order; anything else is refused', () => {
  expect(mac('02:00:0A:0b:00:01')).toBe('02000a0b0001');
  expect(ipv4('10.0.0.1')).toBe('0a000001');
  expect(ipv4('192.168.255.7')).toBe('c0a8ff07');
  expect(() => mac('02:00:00:00:01')).toThrow(/not a MAC address/);
  expect(() => mac('zz:00:00:00:00:01')).toThrow(/not a MAC address/);
  expect(() => ipv4('10.0.0')).toThrow(/not an IPv4 address/);
  expect(() => ipv4('10.0.0.256')).toThrow(/not an IPv4 address/);
});

test('the op list is one list: the agent\'s dispatch table, harness/agent/protocol.ts and PROTOCOL.md name the same ops', async () => {
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { REPO_ROOT } = await import('../harness/base/paths.js');
  const read = (p: string) => readFile(join(REPO_ROOT, p), 'utf8');
  const agentC = await read('images/agent/agent.c');
  const table = agentC.slice(agentC.indexOf('} g_ops[] = {'), agentC.indexOf('};', agentC.indexOf('} g_ops[] = {')));
  const inAgent = [...table.matchAll(/\{ "(\w+)", op_\w+ \}/g)].map((m) => m[1]).sort();
  const protocolTs = await read('harness/agent/protocol.ts');
  const opsBody = protocolTs.slice(protocolTs.indexOf('export interface Ops {'), protocolTs.indexOf('\n}\n', protocolTs.indexOf('export interface Ops {')));
  const inProtocol = [...opsBody.matchAll(/^ {2}(\w+): \{/gm)].map((m) => m[1]).sort();
  const doc = await read('images/agent/PROTOCOL.md');
  const inDoc = [...doc.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]).sort();
  expect(inAgent.length, 'ops found in agent.c').toBeGreaterThan(20);
  expect(inProtocol, 'harness/agent/protocol.ts Ops vs the agent\'s g_ops').toEqual(inAgent);
  expect(inDoc, 'PROTOCOL.md\'s table vs the agent\'s g_ops').toEqual(inAgent);
});
