// struct_ops (5.6): a TCP congestion control written in BPF (bh_tcp_cc.bpf.c, CO-RE against the
// guest's BTF). Registered, the kernel offers "bh_cc" beside its own; a connection that asks for
// it with TCP_CONGESTION gets it (the kernel says so through getsockopt), its init callback runs
// once per connection, and release once each connection is gone. Unregistered, it is no longer
// offered, and asking for it fails with ENOENT.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeEach, expect, test } from 'vitest';
import { type BpfObject, InetSocket, loadCore, pollUntil, readU64s, u32, useGuest } from '../../harness/index.js';

const guest = useGuest({ suite: 'struct_ops', from: import.meta.url });
const source = join(fileURLToPath(new URL('.', import.meta.url)), 'bh_tcp_cc.bpf.c');

const NETNS = 'bh-structops';
const LO = '127.0.0.1';
const ENOENT = 2;
const CALL = { init: 0, ssthresh: 1, congAvoid: 2, undoCwnd: 3, release: 4 } as const;

beforeEach(async () => {
  await guest.ssh.exec(`ip netns add ${NETNS} && ip -n ${NETNS} link set lo up`);
});

async function calls(obj: BpfObject, what: keyof typeof CALL): Promise<bigint> {
  return readU64s((await obj.map('bh_calls').lookup(u32(CALL[what])))!)[0];
}
const available = async () => (await guest.ssh.exec('cat /proc/sys/net/ipv4/tcp_available_congestion_control')).trim().split(/\s+/);

/** Polls until `cond` holds (5 s at most, on the reference machines; longer on a slower host). */
const until = (cond: () => Promise<boolean>) => pollUntil(cond, 5_000);

test('registered, bh_cc is offered and chosen by the connections that ask for it: init once per connection, release once each is gone', async () => {
  expect(await available(), 'before registering').not.toContain('bh_cc');
  const obj = await loadCore(guest, source);
  await guest.attach({ type: 'struct_ops', obj, map: 'bh_cc' });
  expect(await available(), 'registered').toContain('bh_cc');

  const listener = await InetSocket.open(guest.agent, { netns: NETNS, proto: 'tcp', addr: LO, port: 7000, listen: true });
  const clients: InetSocket[] = [];
  for (let i = 0; i < 3; i++) {
    const c = await InetSocket.open(guest.agent, { netns: NETNS, proto: 'tcp', congestion: 'bh_cc' });
    expect(c, `client ${i} asks for bh_cc`).toMatchObject({ congestionErrno: 0, congestion: 'bh_cc' });
    const r = await c.connect({ dst: LO, dport: 7000 });
    expect(r, `client ${i} connected`).toMatchObject({ connectErrno: 0, congestion: 'bh_cc' });
    await c.send({ data: 'x'.repeat(1000), count: 20 });
    clients.push(c);
  }
  // One init per connection that chose bh_cc; the listener's side keeps the default.
  expect(await calls(obj, 'init'), 'init calls').toBe(3n);
  const plain = await InetSocket.open(guest.agent, { netns: NETNS, proto: 'tcp' });
  expect(plain.congestion, 'a socket that did not ask').not.toBe('bh_cc');

  for (const c of clients) await c.close();
  const accepted = await listener.recv({ expect: 3 });
  expect(accepted.map((m) => m.data.length), 'bytes each server side received').toEqual([20000, 20000, 20000]);
  // A connection's congestion control is released when the kernel destroys its socket.
  expect(await until(async () => (await calls(obj, 'release')) === 3n), `release calls: ${await calls(obj, 'release')}`).toBe(true);
  expect(await calls(obj, 'init'), 'init calls, at the end').toBe(3n);
});

test('unregistered, bh_cc is no longer offered, and asking for it fails with ENOENT', async () => {
  const obj = await loadCore(guest, source);
  const cc = await guest.attach({ type: 'struct_ops', obj, map: 'bh_cc' });
  expect(await available()).toContain('bh_cc');
  await cc.detach();
  expect(await available(), 'unregistered').not.toContain('bh_cc');
  const c = await InetSocket.open(guest.agent, { netns: NETNS, proto: 'tcp', congestion: 'bh_cc' });
  expect(c, 'asking for bh_cc').toMatchObject({ congestionErrno: ENOENT });
  expect(c.congestion).not.toBe('bh_cc');
  expect(await calls(obj, 'init')).toBe(0n);
});
