// sk_msg (4.17): a verdict program on a sockmap runs on every sendmsg of the sockets in it, before
// the data is queued. Two TCP pairs on a namespace's loopback; client 0 (key 0) writes, client 1
// (key 1) is the redirect target. A pass reaches server 0; a drop fails the writer's send with
// EACCES and reaches nobody; a redirect goes out of client 1, so server 1 receives it. Corking
// holds 3 bytes until 10 have been written, then server 0 gets all 10 at once.
import { beforeEach, expect, test } from 'vitest';
import { AgentError, type BpfObject, readU64s, type StreamSocket, tcpPairs, u32, useGuest } from '../../harness/index.js';

const guest = useGuest({ suite: 'sk_msg', from: import.meta.url, sources: ['sk_msg_verdict.bpf.c'] });

const NETNS = 'bh-skmsg';
const EACCES = 13;
const S = { runs: 0, bytes: 1, passed: 2, dropped: 3, redirected: 4 } as const;

beforeEach(async () => {
  await guest.ssh.exec(`ip netns add ${NETNS}`);
});

async function stats(obj: BpfObject) {
  const out = {} as Record<keyof typeof S, bigint>;
  for (const [k, slot] of Object.entries(S)) out[k as keyof typeof S] = readU64s((await obj.map('stats').lookup(u32(slot)))!)[0];
  return out;
}

/** Two connected pairs; the clients in the sockmap at keys 0 and 1, the program attached. */
async function setup(prog: 'verdict' | 'cork') {
  const obj = await guest.load('sk_msg_verdict.bpf.c');
  await guest.attach({ type: 'sk_msg', obj, prog, map: 'socks' });
  const { pairs } = await tcpPairs(guest.agent, { netns: NETNS, count: 2 });
  for (const [key, p] of pairs.entries()) await p.client.sockmapAdd(obj, 'socks', key);
  return { obj, pairs };
}
const read = async (sock: StreamSocket, waitMs = 150) => (await sock.read({ waitMs })).data;

test('the verdict passes, redirects out of another socket, and drops (the send fails with EACCES), message by message', async () => {
  const { obj, pairs } = await setup('verdict');
  const [p0, p1] = pairs;

  expect(await p0.client.write('pass: hello'), 'pass').toMatchObject({ written: 11 });
  expect(await read(p0.server), 'server 0 after a pass').toBe('pass: hello');

  expect(await p0.client.write('redirect: to pair 1'), 'redirect').toMatchObject({ written: 19 });
  expect(await read(p1.server), 'server 1 after a redirect').toBe('redirect: to pair 1');
  expect(await read(p0.server), 'server 0 after a redirect').toBe('');

  // Last: after a drop, 6.1 failed the socket's next send with EACCES too.
  const err = await p0.client.write('drop: secret').then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'the dropped write').toBeInstanceOf(AgentError);
  expect((err as AgentError).errno, 'errno of the dropped send').toBe(EACCES);
  expect(await read(p0.server), 'server 0 after a drop').toBe('');
  expect(await read(p1.server), 'server 1 after a drop').toBe('');
  expect(await stats(obj)).toEqual({ runs: 3n, bytes: 11n + 19n + 12n, passed: 1n, dropped: 1n, redirected: 1n });
});

test('bpf_msg_cork_bytes holds a short message until 10 bytes are written, then the program passes them as one', async () => {
  const { obj, pairs } = await setup('cork');
  const [p0] = pairs;
  await p0.client.write('abc');
  expect(await read(p0.server, 300), 'server 0 after 3 bytes (corked)').toBe('');
  await p0.client.write('defghij');
  expect(await read(p0.server), 'server 0 after 10 bytes').toBe('abcdefghij');
  // One run on the first 3 bytes (which corked), one on all 10 once they were in.
  expect(await stats(obj)).toMatchObject({ runs: 2n, passed: 2n });
});
