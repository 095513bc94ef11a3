// cgroup v2 socket-creation programs (BPF_CGROUP_INET_SOCK_CREATE, section cgroup/sock): the
// agent creates sockets from a child that joined the cgroup (and from itself, outside it) and
// reports socket()'s errno and the socket's SO_MARK, SO_PRIORITY and SO_BINDTODEVICE.
import { expect, test } from 'vitest';
import { atLeast, frameLength, linkStats, type Ops, readU64s, send, SETTLE_MS, u32, UdpSink, useCgroup, useGuest, VethPair } from '../../harness/index.js';
import { describe } from 'vitest';

const guest = useGuest({
  suite: 'cgroup_sock',
  from: import.meta.url,
  sources: ['cgroup_sock_deny.bpf.c', 'cgroup_sock_bind.bpf.c', 'cgroup_sock_mark.bpf.c', 'cgroup_sock_bind_dev.bpf.c'],
});

const EPERM = 1;
const AF = { inet: 2, inet6: 10 } as const;
const SOCK = { stream: 1, dgram: 2, raw: 3 } as const;

const cg = useCgroup(guest, 'sock');

type Kind = Pick<Ops['sock_create_test']['req'], 'family' | 'type' | 'protocol'>;
const create = (kind: Kind, inCgroup: boolean) => guest.agent.call('sock_create_test', { ...kind, cgroup: inCgroup ? cg.path : undefined });

test('sockets of a refused family, type or protocol fail with EPERM inside the cgroup only; each creation is counted', async () => {
  const obj = await guest.load('cgroup_sock_deny.bpf.c');
  const a = await guest.attach({ type: 'cgroup_sock', obj, prog: 'deny_inet6_raw_icmp', cgroup: cg.path });
  // [kind, refused inside the cgroup, the protocol the kernel gives the socket]
  const cases: [Kind, boolean, number][] = [
    [{ family: 'inet6', type: 'dgram' }, true, 17],
    [{ family: 'inet6', type: 'stream' }, true, 6],
    [{ family: 'inet', type: 'raw', protocol: 1 }, true, 1],
    [{ family: 'inet', type: 'raw', protocol: 17 }, false, 17],
    [{ family: 'inet', type: 'stream' }, false, 6],
    [{ family: 'inet', type: 'dgram' }, false, 17],
  ];
  for (const [kind, refused] of cases) {
    const inside = await create(kind, true);
    expect(inside, `inside ${JSON.stringify(kind)}`).toMatchObject(refused ? { created: false, createErrno: EPERM } : { created: true, createErrno: 0 });
    const outside = await create(kind, false);
    expect(outside, `outside ${JSON.stringify(kind)}`).toMatchObject({ created: true, createErrno: 0 });
  }

  // One entry per socket() made inside the cgroup, with what the program saw; none from outside.
  const entries = (await obj.map('created').dump()).map((e) => {
    const k = Buffer.from(e.key, 'hex');
    return { family: k.readUInt32LE(0), type: k.readUInt32LE(4), protocol: k.readUInt32LE(8), allowed: k.readUInt32LE(12), count: readU64s(e.value!)[0] };
  });
  const expected = cases.map(([kind, refused, protocol]) => ({ family: AF[kind.family], type: SOCK[kind.type], protocol, allowed: refused ? 0 : 1, count: 1n }));
  const order = (x: { family: number; type: number; protocol: number }) => x.family * 1e6 + x.type * 1e3 + x.protocol;
  expect(entries.sort((x, y) => order(x) - order(y))).toEqual(expected.sort((x, y) => order(x) - order(y)));

  // Detached: the cgroup may create them again, and the program no longer counts.
  await a.detach();
  expect(await create({ family: 'inet6', type: 'dgram' }, true)).toMatchObject({ created: true, createErrno: 0 });
  const again = await obj.map('created').lookup(Buffer.from(new Uint32Array([AF.inet6, SOCK.dgram, 17, 0]).buffer).toString('hex'));
  expect(readU64s(again!)[0]).toBe(1n);
  await obj.unload();
});

test('bound_dev_if written at creation binds the cgroup\'s sockets to lo; sockets outside stay unbound', async () => {
  const obj = await guest.load('cgroup_sock_bind.bpf.c');
  await guest.attach({ type: 'cgroup_sock', obj, prog: 'bind_to_lo', cgroup: cg.path });
  // SO_BINDTODEVICE reads the binding back on every kernel; SO_BINDTOIFINDEX arrived in 5.1, and
  // older kernels refuse it with ENOPROTOOPT.
  const byIndex = atLeast(guest.kernel.version, '5.1');
  const ENOPROTOOPT = 92;
  for (const type of ['dgram', 'stream'] as const) {
    expect(await create({ family: 'inet', type }, true), `inside, ${type}`).toMatchObject({
      created: true,
      boundDev: 'lo',
      boundIfindex: byIndex ? 1 : 0,
      boundIfindexErrno: byIndex ? 0 : ENOPROTOOPT,
    });
    expect(await create({ family: 'inet', type }, false), `outside, ${type}`).toMatchObject({
      created: true,
      boundDev: '',
      boundIfindex: 0,
      boundIfindexErrno: byIndex ? 0 : ENOPROTOOPT,
    });
  }
  await obj.unload();
});

test('mark and priority written at creation are the socket\'s SO_MARK and SO_PRIORITY', async (ctx) => {
  guest.requireKernel(ctx, '4.14', 'writing bpf_sock.mark and bpf_sock.priority in cgroup/sock programs');
  const obj = await guest.load('cgroup_sock_mark.bpf.c');
  await guest.attach({ type: 'cgroup_sock', obj, prog: 'set_mark_priority', cgroup: cg.path });
  expect(await create({ family: 'inet', type: 'stream' }, true)).toMatchObject({ created: true, mark: 0xb1f, priority: 6 });
  expect(await create({ family: 'inet', type: 'dgram' }, true)).toMatchObject({ created: true, mark: 0xd06, priority: 2 });
  expect(await create({ family: 'inet', type: 'stream' }, false)).toMatchObject({ created: true, mark: 0, priority: 0 });
  expect(await create({ family: 'inet', type: 'dgram' }, false)).toMatchObject({ created: true, mark: 0, priority: 0 });
  // The program ran exactly twice (the two sockets inside), and found mark and priority 0 on both.
  expect(readU64s((await obj.map('seen_before').lookup(u32(0)))!)[0]).toBe(2n);
  expect(readU64s((await obj.map('seen_before').lookup(u32(1)))!)[0]).toBe(0n);
  await obj.unload();
});

// Issue 11: bound_dev_if set at creation decides which device the socket's traffic leaves
// through. Namespace A has two veth pairs, to B and to C; both hold DEST, and A's preferred route
// to DEST goes to B (a second one, through C, has a higher metric). Datagrams from a socket made
// in the cgroup, bound by the program to A's end of the pair to C, arrive at C; the same
// datagrams from outside the cgroup go the preferred way, to B.
describe('bound_dev_if steering traffic', () => {
  const DEST = '10.200.247.9';
  const PORT = 6401;

  test('a socket bound to a device at creation sends through it: C receives the cgroup\'s datagrams, B the others', async () => {
    const toB = await VethPair.create(guest.agent);
    const toC = await VethPair.create(guest.agent, { aNetns: toB.a.netns });
    try {
      const A = toB.a.netns;
      await guest.exec(
        [
          'set -e',
          `ip -n ${toB.b.netns} addr add ${DEST}/32 dev lo`,
          `ip -n ${toC.b.netns} addr add ${DEST}/32 dev lo`,
          `ip -n ${A} route add ${DEST}/32 via ${toB.b.ip} dev ${toB.a.ifname}`,
          `ip -n ${A} route add ${DEST}/32 via ${toC.b.ip} dev ${toC.a.ifname} metric 100`,
        ].join('\n'),
      );
      const obj = await guest.load('cgroup_sock_bind_dev.bpf.c');
      await obj.map('bind_dev').update(u32(0), u32(toC.a.ifindex));
      await guest.attach({ type: 'cgroup_sock', obj, prog: 'bind_to_dev', cgroup: cg.path });
      const atB = await UdpSink.open(guest.agent, { netns: toB.b.netns, port: PORT });
      const atC = await UdpSink.open(guest.agent, { netns: toC.b.netns, port: PORT });
      const before = { b: await linkStats(guest, toB.b.ifname, toB.b.netns), c: await linkStats(guest, toC.b.ifname, toC.b.netns) };

      const inside = await send(guest.agent, { netns: A, proto: 'udp', dst: DEST, dport: PORT, count: 12, size: 40, cgroup: cg.path });
      expect(inside.sent).toBe(12);
      expect(await atC.stats({ expect: 12 })).toMatchObject({ packets: 12, bytes: 12 * 40 });
      expect((await atB.stats({ waitMs: SETTLE_MS })).packets).toBe(0);

      const outside = await send(guest.agent, { netns: A, proto: 'udp', dst: DEST, dport: PORT, count: 7, size: 40 });
      expect(outside.sent).toBe(7);
      expect(await atB.stats({ expect: 7 })).toMatchObject({ packets: 7, bytes: 7 * 40 });
      expect((await atC.stats({ waitMs: SETTLE_MS })).packets).toBe(0);

      // The devices' own counters: each datagram crossed the wire it was steered to, once.
      const after = { b: await linkStats(guest, toB.b.ifname, toB.b.netns), c: await linkStats(guest, toC.b.ifname, toC.b.netns) };
      expect(after.c.rxPackets - before.c.rxPackets).toBe(12);
      expect(after.c.rxBytes - before.c.rxBytes).toBe(12 * frameLength('udp', 40));
      expect(after.b.rxPackets - before.b.rxPackets).toBe(7);
      // The program bound exactly the one socket made in the cgroup.
      expect(Buffer.from((await obj.map('bind_dev').lookup(u32(1)))!, 'hex').readUInt32LE(0)).toBe(1);
    } finally {
      await toC.destroy();
      await toB.destroy();
    }
  });
});
