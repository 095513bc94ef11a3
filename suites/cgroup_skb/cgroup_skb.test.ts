// cgroup v2 skb filters (BPF_CGROUP_INET_EGRESS / BPF_CGROUP_INET_INGRESS): sockets of processes
// inside a cgroup are filtered, sockets outside it are not. Traffic goes from namespace A to
// namespace B over a veth pair; the agent does the cgroup's work in a forked child that joins it.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { AgentError, type BpfObject, Cgroup, IP_PROTO, ipLength, type Proto, readU64s, send, sendAllowingErrors, UdpSink, useCgroup, useGuest, useVethPair } from '../../harness/index.js';

const guest = useGuest({ suite: 'cgroup_skb', from: import.meta.url, sources: ['cgroup_skb.bpf.c', 'cgroup_skb_inherit.bpf.c'] });

// Must match cgroup_skb.bpf.c.
const DENY_PORT = 7777;
const ALLOW_PORT = 7778;
const OTHER_PORT = 7779;
const EPERM = 1;
const REFUSED = 0x100;

const net = useVethPair(guest);
const cg = useCgroup(guest, 'skb');

/** The whole counter map: "proto" or "proto refused" -> {packets, bytes}. */
async function counters(obj: BpfObject, map: string) {
  const out: Record<string, { packets: bigint; bytes: bigint }> = {};
  for (const e of await obj.map(map).dump()) {
    const k = Buffer.from(e.key, 'hex').readUInt32LE(0);
    const proto = (Object.keys(IP_PROTO) as Proto[]).find((p) => IP_PROTO[p] === (k & 0xff)) ?? String(k & 0xff);
    const [packets, bytes] = readU64s(e.value!);
    out[`${proto}${k & REFUSED ? ' refused' : ''}`] = { packets, bytes };
  }
  return out;
}

const seen = (count: number, proto: Proto, size: number) => ({ packets: BigInt(count), bytes: BigInt(count * ipLength(proto, size)) });

/** A UDP socket in namespace B, created inside the cgroup or outside it. */
function listen(port: number, inCgroup: boolean) {
  return UdpSink.open(guest.agent, { netns: net.b.netns, port, cgroup: inCgroup ? cg.path : undefined });
}
/** Judged: the program counted this many datagrams it refused. */
const refusedBy = (obj: BpfObject, map: string, expected: number) => ({ count: async () => (await counters(obj, map))['udp refused']?.packets ?? 0n, expected });

test('egress: a sender inside the cgroup gets EPERM for refused UDP, one outside does not; counters are exact', async () => {
  const obj = await guest.load('cgroup_skb.bpf.c');
  const a = await guest.attach({ type: 'cgroup_skb', obj, prog: 'egress_filter', cgroup: cg.path, direction: 'egress' });
  const denied = await UdpSink.open(guest.agent, { netns: net.b.netns, port: DENY_PORT });
  const allowed = await UdpSink.open(guest.agent, { netns: net.b.netns, port: ALLOW_PORT });
  const from = { netns: net.a.netns, dst: net.b.ip };

  // Inside the cgroup: every datagram to the refused port fails at sendto with EPERM.
  const refused = await sendAllowingErrors(guest.agent, { ...from, proto: 'udp', dport: DENY_PORT, count: 12, size: 100, cgroup: cg.path });
  expect(refused).toMatchObject({ sent: 0, sendErrors: 12, sendErrno: EPERM });
  expect((await denied.stats({ judged: refusedBy(obj, 'egress_stats', 12) })).packets).toBe(0);

  // Inside the cgroup, other traffic goes: UDP to another port, and ICMP echo (answered).
  const ok = await send(guest.agent, { ...from, proto: 'udp', dport: ALLOW_PORT, count: 9, size: 300, cgroup: cg.path });
  expect(ok.sent).toBe(9);
  expect(ok.sendErrors ?? 0).toBe(0);
  expect(await allowed.stats({ expect: 9 })).toMatchObject({ packets: 9, bytes: 9 * 300 });
  const icmp = await send(guest.agent, { ...from, proto: 'icmp', count: 5, size: 56, cgroup: cg.path });
  expect(icmp.replies).toBe(5);

  // Outside the cgroup the same port is reachable, and the program sees none of it.
  const outside = await send(guest.agent, { ...from, proto: 'udp', dport: DENY_PORT, count: 7, size: 100 });
  expect(outside.sendErrors ?? 0).toBe(0);
  expect(await denied.stats({ expect: 7 })).toMatchObject({ packets: 7, bytes: 7 * 100 });

  expect(await counters(obj, 'egress_stats')).toEqual({
    'udp refused': seen(12, 'udp', 100),
    udp: seen(9, 'udp', 300),
    icmp: seen(5, 'icmp', 56),
  });

  // Detached, the cgroup's sender reaches the refused port again and nothing more is counted.
  await a.detach();
  const after = await send(guest.agent, { ...from, proto: 'udp', dport: DENY_PORT, count: 4, size: 100, cgroup: cg.path });
  expect(after.sent).toBe(4);
  expect(after.sendErrors ?? 0).toBe(0);
  expect((await denied.stats({ expect: 4 })).packets).toBe(4);
  expect((await counters(obj, 'egress_stats'))['udp refused']).toEqual(seen(12, 'udp', 100));
  await obj.unload();
});

test('ingress: datagrams to a socket inside the cgroup are dropped, to one outside they arrive; counters are exact', async () => {
  const obj = await guest.load('cgroup_skb.bpf.c');
  await guest.attach({ type: 'cgroup_skb', obj, prog: 'ingress_filter', cgroup: cg.path, direction: 'ingress' });
  const inDenied = await listen(DENY_PORT, true);
  const inAllowed = await listen(ALLOW_PORT, true);
  const outOther = await listen(OTHER_PORT, false);
  const from = { netns: net.a.netns, dst: net.b.ip, proto: 'udp' } as const;

  await send(guest.agent, { ...from, dport: DENY_PORT, count: 10, size: 64 });
  await send(guest.agent, { ...from, dport: ALLOW_PORT, count: 6, size: 500 });
  await send(guest.agent, { ...from, dport: OTHER_PORT, count: 8, size: 64 });
  expect((await inDenied.stats({ judged: refusedBy(obj, 'ingress_stats', 10) })).packets).toBe(0);
  expect(await inAllowed.stats({ expect: 6 })).toMatchObject({ packets: 6, bytes: 6 * 500 });
  expect(await outOther.stats({ expect: 8 })).toMatchObject({ packets: 8, bytes: 8 * 64 });

  // The same refused port, now bound by a socket outside the cgroup: everything arrives.
  await inDenied.close();
  const outDenied = await listen(DENY_PORT, false);
  await send(guest.agent, { ...from, dport: DENY_PORT, count: 10, size: 64 });
  expect(await outDenied.stats({ expect: 10 })).toMatchObject({ packets: 10, bytes: 10 * 64 });

  // The program saw exactly the datagrams for the cgroup's sockets, and nothing sent outside it.
  expect(await counters(obj, 'ingress_stats')).toEqual({
    'udp refused': seen(10, 'udp', 64),
    udp: seen(6, 'udp', 500),
  });
  await obj.unload();
});

test('an ingress program does not filter what the cgroup sends', async () => {
  const obj = await guest.load('cgroup_skb.bpf.c');
  await guest.attach({ type: 'cgroup_skb', obj, prog: 'ingress_filter', cgroup: cg.path, direction: 'ingress' });
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: DENY_PORT });
  // The sender is in the cgroup (in namespace A), the receiver is not.
  const r = await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: DENY_PORT, count: 11, size: 32, cgroup: cg.path });
  expect(r.sent).toBe(11);
  expect(r.sendErrors ?? 0).toBe(0);
  expect(await sink.stats({ expect: 11 })).toMatchObject({ packets: 11, bytes: 11 * 32 });
  // The ingress program, attached, saw none of what the cgroup sent.
  expect(await counters(obj, 'ingress_stats')).toEqual({});
  await obj.unload();
});

test('attaching to a directory that is not a cgroup fails with the kernel\'s error', async () => {
  const obj = await guest.load('cgroup_skb.bpf.c');
  const err = await guest.attach({ type: 'cgroup_skb', obj, prog: 'egress_filter', cgroup: '/run/bpf', direction: 'egress' }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentError);
  expect((err as AgentError).errno).toBe(9); // EBADF: the fd is not a cgroup's
  await obj.unload();
});

// Issue 11: a program on a cgroup applies to the sockets of its descendants; a descendant's own
// program replaces it only when the ancestor's was attached with BPF_F_ALLOW_OVERRIDE, and
// without that flag the kernel refuses the descendant's attach with EPERM. Each program counts in
// a map of its own which packets it ran for; the senders are the agent's children, one in each
// cgroup.
describe('cgroup inheritance and BPF_F_ALLOW_OVERRIDE', () => {
  const BPF_F_ALLOW_OVERRIDE = 1;
  const PORT = ALLOW_PORT;
  const SIZE = 64;
  let parent: Cgroup;
  let child: string;
  beforeEach(async () => {
    parent = await Cgroup.create(guest, 'inherit');
    child = `${parent.path}/child`;
    await guest.exec(`mkdir ${child}`);
  });
  afterEach(async () => {
    await guest.exec(`rmdir ${child} 2>/dev/null || true`);
    await parent?.remove();
  });

  const attachTo = (obj: BpfObject, prog: string, cgroup: string, flags: number) =>
    guest.agent.call('attach_cgroup', { obj: obj.handle, prog, attachType: 'cgroup_inet_egress', cgroup, flags });

  /** {packets, bytes} a program counted. */
  async function countedBy(obj: BpfObject, map: 'parent_seen' | 'child_seen') {
    const [packets, bytes] = readU64s((await obj.map(map).lookup('00000000'))!);
    return { packets, bytes };
  }

  /** `count` datagrams to B from a process in `cgroup` (or outside any of ours); all must leave. */
  async function sendFrom(cgroup: string | undefined, count: number) {
    const r = await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: PORT, count, size: SIZE, cgroup });
    expect(r).toMatchObject({ sent: count });
    expect(r.sendErrors ?? 0).toBe(0);
  }

  test('a program on the parent runs for the sockets of a process in the child cgroup', async () => {
    const obj = await guest.load('cgroup_skb_inherit.bpf.c');
    await attachTo(obj, 'parent_count', parent.path, 0);
    const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: PORT });

    await sendFrom(child, 6);
    await sendFrom(undefined, 4); // outside the parent: not its program's business
    expect(await sink.stats({ expect: 10 })).toMatchObject({ packets: 10 });
    expect(await countedBy(obj, 'parent_seen')).toEqual(seen(6, 'udp', SIZE));
    expect(await countedBy(obj, 'child_seen')).toEqual(seen(0, 'udp', SIZE));
  });

  test('with BPF_F_ALLOW_OVERRIDE on the parent, the child\'s own program replaces the parent\'s for the child, and the parent\'s returns when it goes', async () => {
    const obj = await guest.load('cgroup_skb_inherit.bpf.c');
    await attachTo(obj, 'parent_count', parent.path, BPF_F_ALLOW_OVERRIDE);
    // 4.14 wants an overridable program below an overridable one; later kernels take either.
    await attachTo(obj, 'child_count', child, BPF_F_ALLOW_OVERRIDE);
    const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: PORT });

    await sendFrom(child, 5);
    await sendFrom(parent.path, 3); // a process in the parent itself: the parent's program
    expect(await sink.stats({ expect: 8 })).toMatchObject({ packets: 8 });
    expect(await countedBy(obj, 'child_seen')).toEqual(seen(5, 'udp', SIZE));
    expect(await countedBy(obj, 'parent_seen')).toEqual(seen(3, 'udp', SIZE));

    // The child's program detached: the parent's applies to the child again.
    await guest.agent.call('detach_cgroup', { obj: obj.handle, prog: 'child_count', attachType: 'cgroup_inet_egress', cgroup: child });
    await sendFrom(child, 2);
    expect(await sink.stats({ expect: 2 })).toMatchObject({ packets: 2 });
    expect(await countedBy(obj, 'child_seen')).toEqual(seen(5, 'udp', SIZE));
    expect(await countedBy(obj, 'parent_seen')).toEqual(seen(5, 'udp', SIZE));
  });

  test('without BPF_F_ALLOW_OVERRIDE on the parent, attaching to the child is refused with EPERM and the parent\'s program keeps running for it', async () => {
    const obj = await guest.load('cgroup_skb_inherit.bpf.c');
    await attachTo(obj, 'parent_count', parent.path, 0);
    for (const flags of [0, BPF_F_ALLOW_OVERRIDE]) {
      const err = await attachTo(obj, 'child_count', child, flags).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, `attach to the child with flags ${flags}`).toBeInstanceOf(AgentError);
      expect((err as AgentError).errno).toBe(EPERM);
    }
    const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: PORT });
    await sendFrom(child, 4);
    expect(await sink.stats({ expect: 4 })).toMatchObject({ packets: 4 });
    expect(await countedBy(obj, 'parent_seen')).toEqual(seen(4, 'udp', SIZE));
    expect(await countedBy(obj, 'child_seen')).toEqual(seen(0, 'udp', SIZE));
  });
});
