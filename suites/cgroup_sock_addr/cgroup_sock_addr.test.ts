// cgroup sock_addr programs (4.17), as a socket load balancer uses them: sockets created in the
// cgroup that connect() or sendto() the service address 10.77.0.1:5000 really talk to the backend
// 10.77.0.2:6000 (sinks on both addresses count what arrives: the backend gets everything, the
// service address nothing), a bind() to port 7000 gets 7001 (getsockname says what the kernel
// gave), and recvmsg4 (5.2) reports the backend's replies as coming from the service address.
// Sockets created outside the cgroup are untouched. The programs count every call they see.
import { beforeEach, expect, test, type TestContext } from 'vitest';
import { type BpfObject, InetSocket, type InetSocketRequest, readU64s, requireFeature, SETTLE_MS, SOCK_ADDR_HOOKS, type SockAddrHook, UdpSink, useCgroup, useGuest } from '../../harness/index.js';

const guest = useGuest({
  suite: 'cgroup_sock_addr',
  from: import.meta.url,
  sources: ['sock_addr.bpf.c', 'sock_addr_recvmsg.bpf.c'],
});

// sock_addr_common.h
const SERVICE = { addr: '10.77.0.1', port: 5000 };
const BACKEND = { addr: '10.77.0.2', port: 6000 };
const [BIND_ASKED, BIND_GIVEN] = [7000, 7001];
const HOOK = { connect4: 0, sendmsg4: 1, bind4: 2, recvmsg4: 3 } as const;
const [TCP, UDP] = [6, 17];
const ECONNREFUSED = 111;
const NETNS = 'bh-sockaddr';

const cg = useCgroup(guest, 'sockaddr');
beforeEach(async () => {
  // One namespace with both addresses on its loopback: every packet stays in the guest's kernel.
  await guest.ssh.exec(
    `ip netns add ${NETNS} && ip -n ${NETNS} link set lo up && ip -n ${NETNS} addr add ${SERVICE.addr}/32 dev lo && ip -n ${NETNS} addr add ${BACKEND.addr}/32 dev lo`,
  );
});

/** The programs' counters: calls per [hook, protocol, rewritten], only the non-zero ones. */
async function hits(obj: BpfObject): Promise<Record<string, bigint>> {
  const out: Record<string, bigint> = {};
  for (const e of await obj.map('hits').dump()) {
    const k = Buffer.from(e.key, 'hex');
    const hook = Object.entries(HOOK).find(([, v]) => v === k.readUInt32LE(0))?.[0] ?? `hook${k.readUInt32LE(0)}`;
    out[`${hook} ${k.readUInt32LE(4) === TCP ? 'tcp' : k.readUInt32LE(4) === UDP ? 'udp' : k.readUInt32LE(4)} ${k.readUInt32LE(8) ? 'rewritten' : 'kept'}`] = readU64s(e.value!)[0];
  }
  return out;
}

const inet = (req: Omit<InetSocketRequest, 'netns'>) => InetSocket.open(guest.agent, { netns: NETNS, ...req });
const udpSink = (at: { addr: string; port: number }) => UdpSink.open(guest.agent, { netns: NETNS, addr: at.addr, port: at.port });
/**
 * Datagrams a sink received since it was last read: `expect` of them; without, none. Every check
 * for none comes after all the datagrams of that send arrived at another sink, so only a
 * surplus can still show, within the settle window.
 */
const received = (sink: UdpSink, expect?: number) => sink.stats(expect ? { expect, waitMs: 500 } : { waitMs: SETTLE_MS });

/**
 * sock_addr.bpf.c's program for `hook` (named after it) attached to the test's cgroup, where the
 * kernel has the hook (`since`: its first kernel); the test is skipped, naming it, where it has not.
 */
async function onHook(ctx: TestContext, hook: SockAddrHook, since: string) {
  await requireFeature(ctx, guest, { feature: `cgroup_sock_addr ${hook}`, since, progType: 'cgroup_sock_addr', attachType: SOCK_ADDR_HOOKS[hook] });
  const obj = await guest.load('sock_addr.bpf.c');
  return { obj, attached: await guest.attach({ type: 'cgroup_sock_addr', hook, obj, prog: hook, cgroup: cg.path }) };
}

test('connect4 sends a UDP socket connected to the service address to the backend: the backend gets every datagram, the service address none', async (ctx) => {
  const { obj, attached: a } = await onHook(ctx, 'connect4', '4.17');
  const [service, backend] = [await udpSink(SERVICE), await udpSink(BACKEND)];

  const inside = await inet({ proto: 'udp', cgroup: cg.path });
  const c = await inside.connect({ dst: SERVICE.addr, dport: SERVICE.port });
  // The kernel's own view of the peer: the rewritten address.
  expect(c, 'connect from inside the cgroup').toMatchObject({ connectErrno: 0, remoteAddr: BACKEND.addr, remotePort: BACKEND.port });
  expect((await inside.send({ data: 'x'.repeat(100), count: 5 })).sent).toBe(5);
  expect(await received(backend, 5), 'backend sink').toMatchObject({ packets: 5, bytes: 500 });
  expect(await received(service), 'service sink').toMatchObject({ packets: 0, bytes: 0 });

  // Outside the cgroup the same connect goes where it was asked to.
  const outside = await inet({ proto: 'udp' });
  expect(await outside.connect({ dst: SERVICE.addr, dport: SERVICE.port }), 'connect from outside').toMatchObject({
    connectErrno: 0,
    remoteAddr: SERVICE.addr,
    remotePort: SERVICE.port,
  });
  await outside.send({ data: 'y'.repeat(40), count: 3 });
  expect(await received(service, 3), 'service sink, from outside').toMatchObject({ packets: 3, bytes: 120 });
  expect(await received(backend), 'backend sink, from outside').toMatchObject({ packets: 0 });

  // A connect to another address from inside is seen and left alone.
  const other = await inet({ proto: 'udp', cgroup: cg.path });
  expect(await other.connect({ dst: SERVICE.addr, dport: 5999 })).toMatchObject({ remoteAddr: SERVICE.addr, remotePort: 5999 });
  expect(await hits(obj)).toEqual({ 'connect4 udp rewritten': 1n, 'connect4 udp kept': 1n });

  // Detached: a new connect from inside goes to the service address again.
  await a.detach();
  const after = await inet({ proto: 'udp', cgroup: cg.path });
  expect(await after.connect({ dst: SERVICE.addr, dport: SERVICE.port }), 'after detach').toMatchObject({ remoteAddr: SERVICE.addr, remotePort: SERVICE.port });
  expect(await hits(obj)).toEqual({ 'connect4 udp rewritten': 1n, 'connect4 udp kept': 1n });
});

test('connect4 sends a TCP connection to the backend\'s listener, which accepts it with its data; the service address\'s listener accepts nothing', async (ctx) => {
  const { obj } = await onHook(ctx, 'connect4', '4.17');
  const service = await inet({ proto: 'tcp', addr: SERVICE.addr, port: SERVICE.port, listen: true });
  const backend = await inet({ proto: 'tcp', addr: BACKEND.addr, port: BACKEND.port, listen: true });
  expect([service.bindErrno, backend.bindErrno]).toEqual([0, 0]);

  const client = await inet({ proto: 'tcp', cgroup: cg.path });
  const c = await client.connect({ dst: SERVICE.addr, dport: SERVICE.port });
  expect(c, 'TCP connect from inside the cgroup').toMatchObject({ connectErrno: 0, remoteAddr: BACKEND.addr, remotePort: BACKEND.port });
  expect((await client.send({ data: 'hello backend' })).bytes).toBe(13);
  await client.close();
  expect(await backend.recv({ expect: 1 }), 'accepted by the backend').toEqual([
    { addr: c.localAddr, port: c.localPort, data: 'hello backend' },
  ]);
  expect(await service.recv(), 'accepted at the service address').toEqual([]);

  // With no backend listening, the rewritten connect is refused by the backend's address, even
  // though the service address has a listener.
  await backend.close();
  const refused = await inet({ proto: 'tcp', cgroup: cg.path });
  expect(await refused.connect({ dst: SERVICE.addr, dport: SERVICE.port })).toMatchObject({ connectErrno: ECONNREFUSED });
  expect(await service.recv(), 'accepted at the service address, backend gone').toEqual([]);
  expect(await hits(obj)).toEqual({ 'connect4 tcp rewritten': 2n });
});

test('sendmsg4 rewrites the destination of each sendto() on an unconnected UDP socket: the backend gets them all', async (ctx) => {
  const { obj } = await onHook(ctx, 'sendmsg4', '4.18');
  const [service, backend] = [await udpSink(SERVICE), await udpSink(BACKEND)];

  const inside = await inet({ proto: 'udp', cgroup: cg.path });
  const s = await inside.send({ data: 'z'.repeat(64), count: 7, dst: SERVICE.addr, dport: SERVICE.port });
  expect(s, 'sendto from inside').toMatchObject({ sent: 7, sendErrno: 0, remoteAddr: '' }); // still unconnected
  expect(await received(backend, 7), 'backend sink').toMatchObject({ packets: 7, bytes: 448 });
  expect(await received(service), 'service sink').toMatchObject({ packets: 0 });

  // Other destinations pass unchanged; sockets outside the cgroup are not seen at all.
  const elsewhere = await udpSink({ addr: SERVICE.addr, port: 5001 });
  await inside.send({ data: 'q', count: 2, dst: SERVICE.addr, dport: 5001 });
  expect(await received(elsewhere, 2), 'port 5001 sink').toMatchObject({ packets: 2 });
  const outside = await inet({ proto: 'udp' });
  await outside.send({ data: 'o', count: 4, dst: SERVICE.addr, dport: SERVICE.port });
  expect(await received(service, 4), 'service sink, from outside').toMatchObject({ packets: 4 });
  expect(await received(backend), 'backend sink, from outside').toMatchObject({ packets: 0 });
  expect(await hits(obj)).toEqual({ 'sendmsg4 udp rewritten': 7n, 'sendmsg4 udp kept': 2n });
});

test('bind4 turns a bind to port 7000 into port 7001: getsockname shows the kernel\'s port, and datagrams reach the socket there', async (ctx) => {
  const { obj } = await onHook(ctx, 'bind4', '4.17');

  const udp = await inet({ proto: 'udp', cgroup: cg.path, addr: SERVICE.addr, port: BIND_ASKED });
  expect(udp, 'UDP bind from inside').toMatchObject({ bindErrno: 0, localAddr: SERVICE.addr, localPort: BIND_GIVEN });
  const tcp = await inet({ proto: 'tcp', cgroup: cg.path, addr: SERVICE.addr, port: BIND_ASKED, listen: true });
  expect(tcp, 'TCP bind from inside').toMatchObject({ bindErrno: 0, localAddr: SERVICE.addr, localPort: BIND_GIVEN });
  const otherPort = await inet({ proto: 'udp', cgroup: cg.path, addr: SERVICE.addr, port: 7100 });
  expect(otherPort, 'bind to another port').toMatchObject({ bindErrno: 0, localPort: 7100 });
  // Outside the cgroup port 7000 is port 7000.
  const outside = await inet({ proto: 'udp', addr: SERVICE.addr, port: BIND_ASKED });
  expect(outside, 'UDP bind from outside').toMatchObject({ bindErrno: 0, localPort: BIND_ASKED });

  // Traffic finds the sockets where the kernel put them: 7001 is the rewritten socket, 7000 the outside one.
  const sender = await inet({ proto: 'udp' });
  await sender.send({ data: 'to-7001', count: 3, dst: SERVICE.addr, dport: BIND_GIVEN });
  await sender.send({ data: 'to-7000', count: 2, dst: SERVICE.addr, dport: BIND_ASKED });
  const at7001 = await udp.recv({ expect: 3 });
  expect(at7001.map((m) => m.data)).toEqual(['to-7001', 'to-7001', 'to-7001']);
  expect((await outside.recv({ expect: 2 })).map((m) => m.data)).toEqual(['to-7000', 'to-7000']);

  const tcpClient = await inet({ proto: 'tcp' });
  expect(await tcpClient.connect({ dst: SERVICE.addr, dport: BIND_GIVEN }), 'TCP connect to 7001').toMatchObject({ connectErrno: 0 });
  await tcpClient.close();
  expect(await tcp.recv({ expect: 1 })).toHaveLength(1);

  expect(await hits(obj)).toEqual({ 'bind4 udp rewritten': 1n, 'bind4 tcp rewritten': 1n, 'bind4 udp kept': 1n });
});

test('recvmsg4 shows the backend\'s replies as coming from the service address; with sendmsg4 a UDP request/reply round trip never sees the backend', async (ctx) => {
  await requireFeature(ctx, guest, { feature: 'cgroup_sock_addr recvmsg4', since: '5.2', progType: 'cgroup_sock_addr', attachType: 'cgroup_udp4_recvmsg' });
  const lb = await guest.load('sock_addr.bpf.c');
  const rev = await guest.load('sock_addr_recvmsg.bpf.c');
  await guest.attach({ type: 'cgroup_sock_addr', hook: 'sendmsg4', obj: lb, prog: 'sendmsg4', cgroup: cg.path });
  await guest.attach({ type: 'cgroup_sock_addr', hook: 'recvmsg4', obj: rev, prog: 'recvmsg4', cgroup: cg.path });

  const backend = await inet({ proto: 'udp', addr: BACKEND.addr, port: BACKEND.port });
  const client = await inet({ proto: 'udp', cgroup: cg.path, addr: SERVICE.addr, port: 9000 });
  // The request: sent to the service, received by the backend from the client's own address.
  await client.send({ data: 'request', count: 1, dst: SERVICE.addr, dport: SERVICE.port });
  expect(await backend.recv({ expect: 1 }), 'at the backend').toEqual([
    { addr: SERVICE.addr, port: 9000, data: 'request' },
  ]);
  // The replies: 3 from the backend, 2 from another port of the backend's address.
  await backend.send({ data: 'reply', count: 3, dst: SERVICE.addr, dport: 9000 });
  const other = await inet({ proto: 'udp', addr: BACKEND.addr, port: 6001 });
  await other.send({ data: 'other', count: 2, dst: SERVICE.addr, dport: 9000 });
  const got = await client.recv({ expect: 5 });
  expect(got, 'what recvfrom says inside the cgroup').toEqual([
    ...Array(3).fill({ ...SERVICE, data: 'reply' }),
    ...Array(2).fill({ addr: BACKEND.addr, port: 6001, data: 'other' }),
  ]);

  // Outside the cgroup recvfrom tells the truth.
  const plain = await inet({ proto: 'udp', addr: SERVICE.addr, port: 9001 });
  await backend.send({ data: 'reply', count: 1, dst: SERVICE.addr, dport: 9001 });
  expect(await plain.recv({ expect: 1 }), 'outside the cgroup').toEqual([{ ...BACKEND, data: 'reply' }]);

  expect(await hits(lb)).toEqual({ 'sendmsg4 udp rewritten': 1n });
  expect(await hits(rev)).toEqual({ 'recvmsg4 udp rewritten': 3n, 'recvmsg4 udp kept': 2n });
});

test('connect4 as a bpf_link (5.7) rewrites like the BPF_PROG_ATTACH attachment; the link goes, the rewrite goes', async (ctx) => {
  // Links on cgroups are not probed (a link is made, not loaded): the version decides.
  await requireFeature(ctx, guest, { feature: 'cgroup programs as bpf_links', since: '5.7' });
  const obj = await guest.load('sock_addr.bpf.c');
  const link = await guest.attach({ type: 'cgroup_sock_addr', hook: 'connect4', obj, prog: 'connect4', cgroup: cg.path, link: true });
  // The kernel lists the link on the cgroup (bpftool reads BPF_LINK_GET_NEXT_ID).
  expect(await guest.ssh.exec('bpftool link show'), 'bpftool link show').toMatch(/cgroup\s/);
  const backend = await udpSink(BACKEND);
  const inside = await inet({ proto: 'udp', cgroup: cg.path });
  expect(await inside.connect({ dst: SERVICE.addr, dport: SERVICE.port }), 'connect through the link').toMatchObject({ remoteAddr: BACKEND.addr, remotePort: BACKEND.port });
  await inside.send({ data: 'via link', count: 3 });
  expect(await received(backend, 3), 'backend sink').toMatchObject({ packets: 3 });
  await link.detach();
  const after = await inet({ proto: 'udp', cgroup: cg.path });
  expect(await after.connect({ dst: SERVICE.addr, dport: SERVICE.port }), 'after the link went').toMatchObject({ remoteAddr: SERVICE.addr, remotePort: SERVICE.port });
  expect(await guest.ssh.exec('bpftool link show'), 'bpftool link show, after').not.toMatch(/cgroup\s/);
  expect(await hits(obj)).toEqual({ 'connect4 udp rewritten': 1n });
});
