// sched_cls: BPF classifiers in direct-action mode on a clsact qdisc, attached with
// `tc filter add ... bpf da obj ... sec tc` on the ingress and egress hooks of a veth pair.
// Traffic goes from namespace A to namespace B. tc loads the objects itself, so the tests read
// and write the programs' maps through the pins iproute2 makes in /sys/fs/bpf/tc/globals.
import { describe, expect, test } from 'vitest';
import { type Endpoint, expectVerifierRejects, frameLength, frames, type Hex, IP_PROTO, linkStats, mac, type Proto, readU64s, requireFeature, send, sendAllowingErrors, TC_PIN_DIR, u32, UdpSink, useGuest, useVethPair, type VethPair } from '../../harness/index.js';

const guest = useGuest({
  suite: 'sched_cls',
  from: import.meta.url,
  sources: ['tc_filter.bpf.c', 'tc_rewrite.bpf.c', 'tc_redirect.bpf.c', 'tc_bad_access.bpf.c', 'tc_classid.bpf.c', 'tc_redirect_ingress.bpf.c', 'tc_ingress_count.bpf.c'],
});

const net = useVethPair(guest);

const N = 20;

// Maps pinned by iproute2.
const pinned = (map: string) => guest.pinnedMap(`${TC_PIN_DIR}/${map}`);
async function lookup(map: string, key: number): Promise<Hex> {
  const value = await pinned(map).lookup(u32(key));
  if (value === null) throw new Error(`${map}[${key}] is absent`);
  return value;
}
async function counter(map: string, key: number) {
  const [packets, bytes] = readU64s(await lookup(map, key));
  return { packets, bytes };
}
async function u64s(map: string, keys: number[]): Promise<bigint[]> {
  const out: bigint[] = [];
  for (const k of keys) out.push(readU64s(await lookup(map, k))[0]);
  return out;
}
async function setDrop(proto: Proto, drop: boolean): Promise<void> {
  await pinned('cls_drop').update(u32(IP_PROTO[proto]), u32(drop ? 1 : 0));
}

/** The endpoint's hook, for attach(). */
function at(ep: Endpoint, direction: 'ingress' | 'egress', source: string) {
  return { type: 'sched_cls', ifname: ep.ifname, netns: ep.netns, direction, object: guest.objectPath(source), section: 'tc' } as const;
}

describe('drop and pass by protocol', () => {
  test('ingress: UDP dropped, ICMP and TCP pass, per-protocol counters in the pinned map are exact', async () => {
    await guest.attach(at(net.b, 'ingress', 'tc_filter.bpf.c'));
    await setDrop('udp', true);
    const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5001 });
    await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 5001, count: N, size: 64 });
    const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: N, size: 56 });
    // SYNs to a closed port: B answers each one with a RST.
    const tcp = await send(guest.agent, { netns: net.a.netns, proto: 'tcp', dst: net.b.ip, dport: 9, count: N, size: 0 });
    expect((await sink.stats({ judged: { count: async () => (await counter('cls_proto_count', IP_PROTO.udp)).packets, expected: N } })).packets).toBe(0);
    expect(icmp.replies).toBe(N);
    expect(tcp.replies).toBe(N);

    // tc ingress sees the whole frame: skb->len counts the Ethernet header.
    expect(await counter('cls_proto_count', IP_PROTO.udp)).toEqual(frames('udp', N, 64));
    expect(await counter('cls_proto_count', IP_PROTO.icmp)).toEqual(frames('icmp', N, 56));
    expect(await counter('cls_proto_count', IP_PROTO.tcp)).toEqual(frames('tcp', N, 0));
    expect(await u64s('cls_verdicts', [0, 1])).toEqual([BigInt(2 * N), BigInt(N)]);
  });

  test('egress: ICMP echo requests dropped on the way out, UDP and TCP pass, counters exact', async () => {
    await guest.attach(at(net.a, 'egress', 'tc_filter.bpf.c'));
    await setDrop('icmp', true);
    const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5001 });
    await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 5001, count: N, size: 100 });
    // A drop on egress may be reported to the sender as ENOBUFS; either way nothing leaves. The
    // exact end: the classifier has judged every echo request.
    const icmp = await sendAllowingErrors(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: N, size: 56, judged: { map: pinned('cls_proto_count'), key: u32(IP_PROTO.icmp), expected: N } });
    const tcp = await send(guest.agent, { netns: net.a.netns, proto: 'tcp', dst: net.b.ip, dport: 9, count: N, size: 0 });
    const arrived = await sink.stats({ expect: N });
    expect(arrived.packets).toBe(N);
    expect(arrived.bytes).toBe(N * 100);
    expect(icmp.sent + (icmp.sendErrors ?? 0)).toBe(N);
    expect(icmp.replies).toBe(0);
    expect(tcp.replies).toBe(N);

    // Only what A sent crosses A's egress hook: requests and SYNs, not B's replies.
    expect(await counter('cls_proto_count', IP_PROTO.icmp)).toEqual(frames('icmp', N, 56));
    expect(await counter('cls_proto_count', IP_PROTO.udp)).toEqual(frames('udp', N, 100));
    expect(await counter('cls_proto_count', IP_PROTO.tcp)).toEqual(frames('tcp', N, 0));
    expect(await u64s('cls_verdicts', [0, 1])).toEqual([BigInt(2 * N), BigInt(N)]);
  });

  test('a verdict changed through the pinned map takes effect on the next packet', async () => {
    await guest.attach(at(net.b, 'ingress', 'tc_filter.bpf.c'));
    const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5001 });
    const arrivals: number[] = [];
    for (const drop of [false, true, false]) {
      await setDrop('udp', drop);
      await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 5001, count: N, size: 32 });
      arrivals.push((await sink.stats({ expect: drop ? undefined : N })).packets);
    }
    expect(arrivals).toEqual([N, 0, N]);
    expect(await counter('cls_proto_count', IP_PROTO.udp)).toEqual(frames('udp', 3 * N, 32));
    expect(await u64s('cls_verdicts', [0, 1])).toEqual([BigInt(2 * N), BigInt(N)]);
  });
});

/** A line pair of /proc/net/snmp in a namespace (e.g. "Udp", "Tcp"), as name -> value. */
async function snmp(netns: string, group: string): Promise<Record<string, number>> {
  const text = await guest.exec(`ip netns exec ${netns} cat /proc/net/snmp`);
  const [head, vals] = text.split('\n').filter((l) => l.startsWith(`${group}:`));
  const v = vals.split(/\s+/).slice(1);
  return Object.fromEntries(head.split(/\s+/).slice(1).map((k, i) => [k, Number(v[i])]));
}

for (const hook of ['egress', 'ingress'] as const) {
  test(`${hook}: destination port and IP TOS rewritten with checksums fixed; UDP arrives at the new port, TCP is answered from it`, async () => {
    // Egress: rewritten on A's way out, and B's ingress classifier (no drops) reports the TOS it sees.
    // Ingress: rewritten on B's way in, before IP checks the header checksum.
    const rewriteAt = hook === 'egress' ? net.a : net.b;
    await guest.attach(at(rewriteAt, hook, 'tc_rewrite.bpf.c'));
    if (hook === 'egress') await guest.attach(at(net.b, 'ingress', 'tc_filter.bpf.c'));
    const old = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5001 });
    const moved = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5002 });
    const other = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5003 });
    await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 5001, count: N, size: 77 });
    await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 5003, count: N, size: 10 });
    // Hand-made SYNs (checksummed in full by the sender, no offload), so B's TCP verifies the
    // rewritten checksum itself. B answers from port 5002, which A's sender does not count as a reply.
    // The exact end: every SYN rewritten (rw_count[1]).
    const tcp = await send(guest.agent, { netns: net.a.netns, proto: 'tcp', dst: net.b.ip, dport: 5001, count: N, size: 0, judged: { map: pinned('rw_count'), key: u32(1), expected: N } });

    // Judged: every datagram to 5001 rewritten, or its rewrite failed.
    const rewritten = async () => (await u64s('rw_count', [0, 2])).reduce((a, b) => a + b);
    expect((await old.stats({ judged: { count: rewritten, expected: N } })).packets).toBe(0);
    const got = await moved.stats({ expect: N });
    // A bad IP header checksum would have made B drop the datagrams.
    expect(got.packets).toBe(N);
    expect(got.bytes).toBe(N * 77);
    // Other ports are not touched.
    expect((await other.stats({ expect: N })).packets).toBe(N);
    expect(tcp.replies).toBe(0);
    expect(await u64s('rw_count', [0, 1, 2])).toEqual([BigInt(N), BigInt(N), 0n]);
    if (hook === 'egress') {
      expect(await counter('cls_tos_count', 0x28)).toEqual({
        packets: BigInt(2 * N),
        bytes: BigInt(N * frameLength('udp', 77) + N * frameLength('tcp', 0)),
      });
      expect(await counter('cls_tos_count', 0)).toEqual(frames('udp', N, 10));
    }
    // B's stack took every rewritten packet as valid: no checksum errors, and each SYN (to the
    // closed port 5002) was answered with a RST.
    const udp = await snmp(net.b.netns, 'Udp');
    expect(udp.InCsumErrors).toBe(0);
    expect(udp.InDatagrams).toBe(2 * N);
    const tcpStats = await snmp(net.b.netns, 'Tcp');
    expect(tcpStats.InCsumErrors).toBe(0);
    expect(tcpStats.InSegs).toBe(N);
    expect(tcpStats.OutRsts).toBe(N);
  });
}

/**
 * A third namespace C behind a second veth pair (`extra`) whose near end is where the redirecting
 * program runs. C also owns `alias` on lo, so datagrams addressed to B's address that are
 * redirected to C are delivered there.
 */
async function sideLink(extra: VethPair, alias: string, from: string) {
  const { a, b } = extra;
  await guest.exec(`ip -n ${b.netns} addr add ${alias}/32 dev lo && ip -n ${b.netns} route add ${from}/32 dev ${b.ifname}`);
  return { near: a, far: b, ifindex: a.ifindex };
}

/** suites/include/redirect.h's struct redirect_cfg. */
function redirCfg(ifindex: number, dmac: string, smac: string): Hex {
  return u32(ifindex) + mac(dmac) + mac(smac);
}

for (const hook of ['ingress', 'egress'] as const) {
  describe(`${hook} redirect`, () => {
    // Ingress: on B's end, redirected out of an interface in B. Egress: on A's end, out of an interface in A.
    const extra = useVethPair(guest, () => ({ aNetns: (hook === 'ingress' ? net.b : net.a).netns }));
    test(`${hook}: bpf_redirect sends UDP to port 6001 out of another interface, into a third namespace`, async () => {
      const here = hook === 'ingress' ? net.b : net.a;
      const side = await sideLink(extra, net.b.ip, net.a.ip);
      await guest.attach(at(here, hook, 'tc_redirect.bpf.c'));
      await pinned('redir_cfg').update(u32(0), redirCfg(side.ifindex, side.far.mac, side.near.mac));

      const atB = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 6001 });
      const atC = await UdpSink.open(guest.agent, { netns: side.far.netns, port: 6001 });
      const otherAtB = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 6002 });
      await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 6001, count: N, size: 48 });
      await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 6002, count: N, size: 48 });
      const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: N, size: 56 });

      const c = await atC.stats({ expect: N });
      expect(c.packets).toBe(N);
      expect(c.bytes).toBe(N * 48);
      // Judged: every datagram to 6001 redirected, or its rewrite failed.
      const redirected = async () => (await u64s('redir_count', [0, 2])).reduce((a, b) => a + b);
      expect((await atB.stats({ judged: { count: redirected, expected: N } })).packets).toBe(0);
      // What the program does not redirect still reaches B.
      expect((await otherAtB.stats({ expect: N })).packets).toBe(N);
      expect(icmp.replies).toBe(N);
      expect(await u64s('redir_count', [0, 1, 2])).toEqual([BigInt(N), BigInt(2 * N), 0n]);
    });
  });
}

test('without a configured target nothing is redirected', async () => {
  await guest.attach(at(net.b, 'ingress', 'tc_redirect.bpf.c'));
  const atB = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 6001 });
  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 6001, count: N, size: 48 });
  expect((await atB.stats({ expect: N })).packets).toBe(N);
  expect(await u64s('redir_count', [0, 1, 2])).toEqual([0n, BigInt(N), 0n]);
});

test('a classifier the verifier rejects makes tc fail, and no filter is installed', async () => {
  await expectVerifierRejects(guest.attach(at(net.b, 'ingress', 'tc_bad_access.bpf.c')), 'cls_unchecked', /invalid access to packet/);
  const filters = await guest.exec(`nsenter --net=/var/run/netns/${net.b.netns} /usr/bin/tc filter show dev ${net.b.ifname} ingress`);
  expect(filters.trim()).toBe('');
  // Traffic is untouched.
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5001 });
  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 5001, count: N, size: 32 });
  expect((await sink.stats({ expect: N })).packets).toBe(N);
});

// Issue 11: a classifier without direct-action, whose return value is the class id (the packet
// lands in that class of a prio qdisc, whose per-class counters the kernel keeps), and
// bpf_redirect to another device's ingress (BPF_F_INGRESS: the packet goes up that device's
// receive path, through its own ingress hook, to a socket).
describe('classid mode, and bpf_redirect to ingress', () => {
  /** tc in a namespace, with maps pinned in the guest's bpffs (as attach() runs it). */
  const tcIn = (netns: string) => `nsenter --net=/var/run/netns/${netns} /usr/bin/tc`;

  test('classid mode: each packet lands in the prio class the program returned, and 0 leaves it to the qdisc', async (ctx) => {
    await requireFeature(ctx, guest, { feature: 'a prio qdisc for the classes', since: '2.6.12', config: ['CONFIG_NET_SCH_PRIO'] });
    const { a, b } = net;
    await guest.exec(
      [
        'set -e',
        // veth has no queue of its own (txqueuelen 0), which the prio bands' fifos take as their limit.
        `ip -n ${a.netns} link set dev ${a.ifname} txqueuelen 1000`,
        `${tcIn(a.netns)} qdisc add dev ${a.ifname} root handle 1: prio`,
        `${tcIn(a.netns)} filter add dev ${a.ifname} parent 1: bpf obj ${guest.objectPath('tc_classid.bpf.c')} sec tc`,
      ].join('\n'),
    );
    expect(await guest.exec(`${tcIn(a.netns)} filter show dev ${a.ifname} parent 1:`)).not.toMatch(/direct-action/);
    const sinks = await Promise.all([6201, 6202, 6203].map((port) => UdpSink.open(guest.agent, { netns: b.netns, port })));
    const sent = { 6201: 7, 6202: 3, 6203: 5 };
    for (const [port, count] of Object.entries(sent)) {
      await send(guest.agent, { netns: a.netns, proto: 'udp', dst: b.ip, dport: Number(port), count, size: 32 });
    }
    for (const [i, count] of Object.values(sent).entries()) expect((await sinks[i].stats({ expect: count })).packets).toBe(count);

    // The kernel's per-class counters ("class prio 1:1 parent 1: leaf 8001:\n Sent 518 bytes 7 pkt ..."; tc has no JSON for classes).
    const text = await guest.exec(`${tcIn(a.netns)} -s class show dev ${a.ifname}`);
    const byClass = Object.fromEntries(
      [...text.matchAll(/^class prio (\S+) [^\n]*\n\s*Sent (\d+) bytes (\d+) pkt/gm)].map((m) => [m[1], { packets: Number(m[3]), bytes: Number(m[2]) }]),
    );
    const frames = (n: number) => ({ packets: n, bytes: n * frameLength('udp', 32) });
    // 6201 -> 1:1 and 6203 -> 1:3 by the program; 6202 (0: no class) -> the priomap's band, 1:2.
    expect(byClass).toEqual({ '1:1': frames(7), '1:2': frames(3), '1:3': frames(5) });
  });

  test('bpf_redirect with BPF_F_INGRESS hands UDP to another device\'s receive path: its ingress hook sees it and the socket gets it; without the flag it leaves through that device instead', async () => {
    const { a, b } = net;
    const BPF_F_INGRESS = 1;
    // A dummy device in B with B's MAC address, so that frames received on it are for this host.
    await guest.exec(
      [
        'set -e',
        `ip -n ${b.netns} link add rd0 type dummy`,
        `ip -n ${b.netns} link set dev rd0 address ${b.mac} up`,
        // Datagrams from A arriving on rd0 are not dropped by reverse-path filtering.
        `ip netns exec ${b.netns} sh -c 'for f in all default rd0; do echo 0 > /proc/sys/net/ipv4/conf/$f/rp_filter; done'`,
      ].join('\n'),
    );
    const [{ ifindex }] = JSON.parse(await guest.exec(`ip -n ${b.netns} -j link show dev rd0`)) as { ifindex: number }[];
    await guest.attach({ type: 'sched_cls', ifname: 'rd0', netns: b.netns, direction: 'ingress', object: guest.objectPath('tc_ingress_count.bpf.c'), section: 'tc' });
    await guest.attach(at(b, 'ingress', 'tc_redirect_ingress.bpf.c'));
    await pinned('redir_in_cfg').update(u32(0), u32(ifindex) + u32(BPF_F_INGRESS));
    const redirected = await UdpSink.open(guest.agent, { netns: b.netns, port: 6101 });
    const other = await UdpSink.open(guest.agent, { netns: b.netns, port: 6102 });
    const rdBefore = await linkStats(guest, 'rd0', b.netns);

    await send(guest.agent, { netns: a.netns, proto: 'udp', dst: b.ip, dport: 6101, count: N, size: 48 });
    await send(guest.agent, { netns: a.netns, proto: 'udp', dst: b.ip, dport: 6102, count: 4, size: 48 });

    expect(await redirected.stats({ expect: N })).toMatchObject({ packets: N, bytes: N * 48 });
    expect(await other.stats({ expect: 4 })).toMatchObject({ packets: 4, bytes: 4 * 48 });
    // rd0's ingress hook saw exactly the redirected ones; nothing left through rd0.
    expect(await counter('arrived_in', 6101)).toEqual(frames('udp', N, 48));
    const otherOnRd0 = await pinned('arrived_in').lookup(u32(6102));
    expect(otherOnRd0).toBeNull();
    expect(await u64s('redir_in_count', [0])).toEqual([BigInt(N)]);
    let rd = await linkStats(guest, 'rd0', b.netns);
    expect(rd.txPackets - rdBefore.txPackets).toBe(0);

    // The control: the same redirect without BPF_F_INGRESS sends them out of rd0 (a dummy
    // device's transmit counts and discards them); the socket and rd0's ingress get nothing.
    await pinned('redir_in_cfg').update(u32(0), u32(ifindex) + u32(0));
    await send(guest.agent, { netns: a.netns, proto: 'udp', dst: b.ip, dport: 6101, count: 6, size: 48 });
    // Judged: rd0's transmit counted all six (the kernel's own counter).
    const outOfRd0 = async () => (await linkStats(guest, 'rd0', b.netns)).txPackets - rdBefore.txPackets;
    expect((await redirected.stats({ judged: { count: outOfRd0, expected: 6 } })).packets).toBe(0);
    rd = await linkStats(guest, 'rd0', b.netns);
    expect(rd.txPackets - rdBefore.txPackets).toBe(6);
    expect(await counter('arrived_in', 6101)).toEqual(frames('udp', N, 48));
  });
});
