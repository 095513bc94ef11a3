import { expect, test } from 'vitest';
import { decodeResponse, encodeRequest, ipv4, mac, readU32, readU64s, u32, u64 } from '../../harness/agent/wire.js';

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
  const { REPO_ROOT } = await import('../../harness/base/paths.js');
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

test('each op\'s request fields are the same in harness/agent/protocol.ts and PROTOCOL.md\'s table, read field by field', async () => {
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const ts = (await import('typescript')).default;
  const { REPO_ROOT } = await import('../../harness/base/paths.js');
  // The fields as the compiler sees them: intersections and unions (MapRef: obj + map, or pin) resolved.
  const file = join(REPO_ROOT, 'harness/agent/protocol.ts');
  const program = ts.createProgram([file], { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, skipLibCheck: true, noEmit: true });
  const checker = program.getTypeChecker();
  const ops = program.getSourceFile(file)!.statements.find((s) => ts.isInterfaceDeclaration(s) && s.name.text === 'Ops') as import('typescript').InterfaceDeclaration;
  const names = (t: import('typescript').Type) => [...new Set((t.isUnion() ? t.types : [t]).flatMap((m) => m.getProperties().map((x) => x.name)))].sort();
  const inTs = new Map(
    checker
      .getTypeAtLocation(ops.name)
      .getProperties()
      .map((p) => [p.name, names(checker.getTypeOfSymbolAtLocation(checker.getTypeOfSymbolAtLocation(p, ops).getProperty('req')!, ops))] as const),
  );
  // The table's request column: an op may have more than one row (`probe` (map type)), and
  // `same fields as X` stands for X's.
  const doc = await readFile(join(REPO_ROOT, 'images/agent/PROTOCOL.md'), 'utf8');
  const rows = new Map<string, string>();
  for (const m of doc.matchAll(/^\| `(\w+)`(?: \([^)]*\))? \| (.*?) \| (.*) \|$/gm)) rows.set(m[1], `${rows.get(m[1]) ?? ''} ${m[2]}`.trim());
  /** Backticked names outside parentheses: the fields themselves, not values or notes about them. */
  const topLevel = (cell: string) => {
    let depth = 0;
    let out = '';
    for (const c of cell) {
      if ('([{'.includes(c)) depth++;
      if (depth === 0) out += c;
      if (')]}'.includes(c)) depth--;
    }
    return [...out.matchAll(/`(\w+)`/g)].map((m) => m[1]);
  };
  const drift: string[] = [];
  for (const [op, row] of rows) {
    const cell = /^same fields as `(\w+)`/.exec(row) ? rows.get(/^same fields as `(\w+)`/.exec(row)![1])! : row;
    const named = new Set([...cell.matchAll(/`(\w+)`/g)].map((m) => m[1]));
    const fields = inTs.get(op) ?? [];
    for (const f of fields) if (!named.has(f)) drift.push(`${op}: ${f} is a request field in protocol.ts, not in PROTOCOL.md`);
    for (const f of topLevel(cell)) if (!fields.includes(f)) drift.push(`${op}: PROTOCOL.md names ${f}, which protocol.ts's request does not have`);
  }
  expect(rows.size).toBeGreaterThan(40);
  expect(drift).toEqual([]);
});
