// Socket filters (BPF_PROG_TYPE_SOCKET_FILTER) attached with SO_ATTACH_BPF: on an AF_PACKET raw
// socket bound to one end of a veth pair, and on a UDP socket. Traffic goes from namespace A to
// namespace B; the filtered sockets live in B.
//
// What a socket filter sees, by experiment (asserted below):
// - AF_PACKET SOCK_RAW: the whole Ethernet frame, received and sent, skb->len = frame length;
//   the return value is how many bytes the socket gets (recv returns the trimmed length).
// - UDP socket: the filter runs after the IP header was pulled, so skb->data is the UDP header and
//   skb->len = 8 + payload; the IP header is still reachable with load_byte(SKF_NET_OFF + n).
//   The return value trims the datagram (kept bytes include the 8-byte UDP header), 0 drops it
//   and counts it in Udp InErrors.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { AgentError, type BpfObject, compileProgram, ETH_HLEN, expectVerifierRejects, frames, IP_PROTO, type Proto, readU64s, send, u32, UdpSink, useGuest, useVethPair } from '../../harness/index.js';

const guest = useGuest({
  suite: 'socket_filter',
  from: import.meta.url,
  sources: ['sockfilter_packet.bpf.c', 'sockfilter_udp.bpf.c', 'sockfilter_direct_access.bpf.c'],
});

const net = useVethPair(guest);

const IP_HLEN = 20;
const UDP_HLEN = 8;
const TCP_HLEN = 20;

/** {packets, bytes} the program counted for an IP protocol. */
async function counted(obj: BpfObject, proto: Proto) {
  const hex = await obj.map('proto_bytes').lookup(u32(IP_PROTO[proto]));
  const [packets, bytes] = readU64s(hex!);
  return { packets, bytes };
}

/** The udp_seen record of sockfilter_udp.bpf.c. */
async function udpSeen(obj: BpfObject) {
  const [packets, bytes, word0, netProto] = readU64s((await obj.map('udp_seen').lookup(u32(0)))!);
  return { packets, bytes, word0, netProto };
}

/** Udp InErrors of a namespace (/proc/net/snmp). */
async function udpInErrors(netns: string): Promise<number> {
  const out = await guest.exec(`ip netns exec ${netns} cat /proc/net/snmp`);
  const [names, values] = out.split('\n').filter((l) => l.startsWith('Udp: '));
  const col = names.split(/\s+/).indexOf('InErrors');
  return Number(values.split(/\s+/)[col]);
}

describe('AF_PACKET raw socket on a veth', () => {
  test('keeps TCP and UDP trimmed to their headers, never delivers ICMP, and counts every frame exactly', async () => {
    const obj = await guest.load('sockfilter_packet.bpf.c');
    // A UDP socket in B so that the datagrams are not answered with ICMP port unreachables.
    const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5001 });
    const { sock } = await guest.attach({ type: 'socket_filter', obj, prog: 'keep_l4_headers', netns: net.b.netns, socket: { kind: 'packet', ifname: net.b.ifname } });

    const plan = { udp: { count: 9, size: 100 }, icmp: { count: 7, size: 56 }, tcp: { count: 5, size: 0 } } as const;
    await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 5001, ...plan.udp });
    const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, ...plan.icmp });
    // SYNs to a closed port: B answers each with one RST, which the packet socket also sees (outgoing).
    const tcp = await send(guest.agent, { netns: net.a.netns, proto: 'tcp', dst: net.b.ip, dport: 9, ...plan.tcp });
    expect(icmp.replies).toBe(plan.icmp.count);
    expect(tcp.replies).toBe(plan.tcp.count);

    // Exact ends: the counts the plan makes (a surplus still shows in the settle window).
    const got = await guest.agent.call('sock_stats', { sock, expect: plan.udp.count + 2 * plan.tcp.count });
    const sinkGot = await sink.stats({ expect: plan.udp.count });

    // The packet socket got each UDP datagram and each TCP segment (SYN in, RST out), cut to
    // Ethernet + IP + L4 header, in the order they crossed the interface, and no ICMP at all.
    const udpHead = ETH_HLEN + IP_HLEN + UDP_HLEN;
    const tcpHead = ETH_HLEN + IP_HLEN + TCP_HLEN;
    expect(got.lengths).toEqual([...Array(plan.udp.count).fill(udpHead), ...Array(2 * plan.tcp.count).fill(tcpHead)]);
    expect(got.packets).toBe(plan.udp.count + 2 * plan.tcp.count);
    // The filter only affects its own socket: the UDP socket got the full datagrams.
    expect(sinkGot).toMatchObject({ packets: plan.udp.count, bytes: plan.udp.count * plan.udp.size });

    // The program saw every frame at full length, both directions for ICMP echo and TCP.
    expect(await counted(obj, 'udp')).toEqual(frames('udp', plan.udp.count, plan.udp.size));
    expect(await counted(obj, 'icmp')).toEqual(frames('icmp', 2 * plan.icmp.count, plan.icmp.size));
    expect(await counted(obj, 'tcp')).toEqual(frames('tcp', 2 * plan.tcp.count, 0));
    // Nothing but these three protocols was counted.
    const others = (await obj.map('proto_bytes').dump()).filter((e) => readU64s(e.value!)[0] !== 0n).map((e) => Buffer.from(e.key, 'hex').readUInt32LE(0));
    expect(others.sort((x, y) => x - y)).toEqual([IP_PROTO.icmp, IP_PROTO.tcp, IP_PROTO.udp]);
  });
});

describe('UDP socket', () => {
  const PORT = 6001;
  const SPORT = 40123;

  test('the filter sees the datagram from the UDP header on and trims what recv returns', async () => {
    const obj = await guest.load('sockfilter_udp.bpf.c');
    const { sock } = await guest.attach({ type: 'socket_filter', obj, prog: 'udp_head4', netns: net.b.netns, socket: { kind: 'udp', port: PORT } });
    const N = 12;
    const SIZE = 300;
    await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, sport: SPORT, dport: PORT, count: N, size: SIZE });
    const got = await UdpSink.of(guest.agent, sock).stats({ expect: N });

    // Every datagram arrived, cut to 4 payload bytes (the filter kept 8 + 4 bytes).
    expect(got.lengths).toEqual(Array(N).fill(4));
    // skb->len was UDP header + payload, and offset 0 held the UDP source port: skb->data is the
    // UDP header. The IP header (protocol 17) is reachable at SKF_NET_OFF.
    expect(await udpSeen(obj)).toEqual({ packets: BigInt(N), bytes: BigInt(N * (UDP_HLEN + SIZE)), word0: BigInt(SPORT), netProto: BigInt(IP_PROTO.udp) });
    expect(await counted(obj, 'udp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * (UDP_HLEN + SIZE)) });
    expect(await udpInErrors(net.b.netns)).toBe(0);
  });

  test('a filter that returns 0 drops every datagram: nothing arrives, the map counts them all', async () => {
    const obj = await guest.load('sockfilter_udp.bpf.c');
    const { sock } = await guest.attach({ type: 'socket_filter', obj, prog: 'udp_drop_all', netns: net.b.netns, socket: { kind: 'udp', port: PORT } });
    const N = 15;
    const SIZE = 64;
    const r = await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, sport: SPORT, dport: PORT, count: N, size: SIZE });
    // The exact end: the filter has seen every datagram, then only the settle window.
    const got = await UdpSink.of(guest.agent, sock).stats({ judged: { count: async () => (await udpSeen(obj)).packets, expected: N } });

    expect(r.sent).toBe(N);
    expect(got).toMatchObject({ packets: 0, bytes: 0, lengths: [] });
    expect(await udpSeen(obj)).toMatchObject({ packets: BigInt(N), bytes: BigInt(N * (UDP_HLEN + SIZE)) });
    // The socket existed, so no port unreachable went back; the kernel counts the drops as errors.
    expect(r.replies).toBe(0);
    expect(await udpInErrors(net.b.netns)).toBe(N);
  });

  test('SO_ATTACH_BPF refuses a program that is not a socket filter', async () => {
    const obj = await guest.load('sockfilter_udp.bpf.c');
    expect(obj.program('not_a_filter').type).toBe('xdp');
    const err = await guest.attach({ type: 'socket_filter', obj, prog: 'not_a_filter', netns: net.b.netns, socket: { kind: 'udp', port: PORT } }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).errno).toBe(22); // EINVAL: wrong program type
    expect((err as AgentError).error).toMatch(/SO_ATTACH_BPF/);
  });
});

test('direct packet access in a socket filter is rejected by the verifier', async () => {
  await expectVerifierRejects(guest.load('sockfilter_direct_access.bpf.c'), 'direct_access', /invalid bpf_context access/);
});

test('a project\'s own test program (C, raw bpf(2)) runs in the guest from the suite: a drop-all filter on a UDP socket stops what reaches it, and only while attached', async () => {
  const program = await compileProgram(join(fileURLToPath(new URL('.', import.meta.url)), 'own_loader.c'));
  const r = await guest.runProgram(program.path);
  expect(r.output.split('\n').filter((l) => /^(not )?ok \d/.test(l))).toEqual([
    'ok 1 - BPF_PROG_LOAD of a socket filter that drops everything gives a program fd',
    'ok 2 - without a filter, the UDP socket receives the datagram',
    'ok 3 - with the filter attached (SO_ATTACH_BPF), it receives nothing',
    'ok 4 - detached again (SO_DETACH_BPF), it receives the next one',
  ]);
  expect(r).toMatchObject({ code: 0, timedOut: false });
});
