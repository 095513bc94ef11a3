// sched_cls: BPF classifiers in direct-action mode on a clsact qdisc, attached with
// `tc filter add ... bpf da obj ... sec tc` on the ingress and egress hooks of a veth pair.
// Traffic goes from namespace A to namespace B. tc loads the objects itself, so the tests read
// and write the programs' maps through the pins iproute2 makes in /sys/fs/bpf/tc/globals.
import { describe, expect, test } from 'vitest';
import { TC_PIN_DIR } from '../../harness/attach.js';
import { readU64s, u32, type Hex } from '../../harness/protocol.js';
import type { Endpoint, VethPair } from '../../harness/topology.js';
import { frameLength, IP_PROTO, send, UdpSink, type Proto } from '../../harness/traffic.js';
import { useGuest, useVethPair } from '../../harness/testing.js';
import { expectVerifierRejects } from '../../harness/verifier.js';

const guest = useGuest({
  suite: 'sched_cls',
  from: import.meta.url,
  sources: ['tc_filter.bpf.c', 'tc_rewrite.bpf.c', 'tc_redirect.bpf.c', 'tc_bad_access.bpf.c'],
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
const expected = (proto: Proto, count: number, size: number) => ({ packets: BigInt(count), bytes: BigInt(count * frameLength(proto, size)) });

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
    expect((await sink.stats()).packets).toBe(0);
    expect(icmp.replies).toBe(N);
    expect(tcp.replies).toBe(N);

    // tc ingress sees the whole frame: skb->len counts the Ethernet header.
    expect(await counter('cls_proto_count', IP_PROTO.udp)).toEqual(expected('udp', N, 64));
    expect(await counter('cls_proto_count', IP_PROTO.icmp)).toEqual(expected('icmp', N, 56));
    expect(await counter('cls_proto_count', IP_PROTO.tcp)).toEqual(expected('tcp', N, 0));
    expect(await u64s('cls_verdicts', [0, 1])).toEqual([BigInt(2 * N), BigInt(N)]);
  });

  test('egress: ICMP echo requests dropped on the way out, UDP and TCP pass, counters exact', async () => {
    await guest.attach(at(net.a, 'egress', 'tc_filter.bpf.c'));
    await setDrop('icmp', true);
    const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5001 });
    await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 5001, count: N, size: 100 });
    // A drop on egress may be reported to the sender as ENOBUFS; either way nothing leaves.
    const icmp = await guest.agent.call('send', { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: N, size: 56 });
    const tcp = await send(guest.agent, { netns: net.a.netns, proto: 'tcp', dst: net.b.ip, dport: 9, count: N, size: 0 });
    const arrived = await sink.stats({ expect: N });
    expect(arrived.packets).toBe(N);
    expect(arrived.bytes).toBe(N * 100);
    expect(icmp.sent + (icmp.sendErrors ?? 0)).toBe(N);
    expect(icmp.replies).toBe(0);
    expect(tcp.replies).toBe(N);

    // Only what A sent crosses A's egress hook: requests and SYNs, not B's replies.
    expect(await counter('cls_proto_count', IP_PROTO.icmp)).toEqual(expected('icmp', N, 56));
    expect(await counter('cls_proto_count', IP_PROTO.udp)).toEqual(expected('udp', N, 100));
    expect(await counter('cls_proto_count', IP_PROTO.tcp)).toEqual(expected('tcp', N, 0));
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
    expect(await counter('cls_proto_count', IP_PROTO.udp)).toEqual(expected('udp', 3 * N, 32));
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
    const tcp = await send(guest.agent, { netns: net.a.netns, proto: 'tcp', dst: net.b.ip, dport: 5001, count: N, size: 0 });

    expect((await old.stats()).packets).toBe(0);
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
      expect(await counter('cls_tos_count', 0)).toEqual(expected('udp', N, 10));
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

function redirCfg(ifindex: number, dmac: string, smac: string): Hex {
  const mac = (m: string) => m.split(':').join('');
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
      expect((await atB.stats()).packets).toBe(0);
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
