// lwt_in: a BPF program on a route's input path (`ip route add ... encap bpf in`), loaded by
// iproute2 in the namespace that receives the packets. It runs for packets whose input route
// lookup picks that route: packets B forwards (A -> B -> C, the route to C's address in B) and,
// as the last test shows, packets delivered locally through a `local` route that carries it.
// The programs count every packet per IP protocol in a map iproute2 pins (read through the pin);
// one of them drops UDP.
import { beforeEach, expect, test } from 'vitest';
import { IP_PIN_DIR, IP_PROTO, ipLength, linkStats, send, UdpSink, useGuest, useVethPair } from '../../harness/index.js';
import { protocolCounts } from '../include/lwt_stats.js';
import { describeRefusedWrites } from '../include/lwt_write.js';

const guest = useGuest({
  suite: 'lwt_in',
  from: import.meta.url,
  sources: ['lwt_in_pass.bpf.c', 'lwt_in_drop_udp.bpf.c', 'lwt_in_write_direct.bpf.c', 'lwt_in_write_helper.bpf.c', 'lwt_in_writes_as_xmit.bpf.c'],
});

const STATS_PIN = `${IP_PIN_DIR}/lwt_in_stats`;
const N = 20;
const PORT = 7001;

const net = useVethPair(guest);
/** The link between B and C: end `a` in B, end `b` in C's namespace. */
const bc = useVethPair(guest, () => ({ aNetns: net.b.netns, subnet: 250 }));
// A third namespace C behind B, with B forwarding between A and C; A reaches C through B.
beforeEach(async () => {
  await guest.exec(
    [
      'set -e',
      `ip -n ${bc.b.netns} route add default via ${bc.a.ip}`,
      `ip netns exec ${net.b.netns} sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'`,
      `ip -n ${net.a.netns} route add 10.200.250.0/24 via ${net.b.ip} dev ${net.a.ifname}`,
    ].join('\n'),
  );
});

const { counted, udpJudged, protocolsSeen } = protocolCounts(guest, STATS_PIN);

/** The program on B's route to C's address (more specific than B's connected /24). */
function attachInB(source: 'lwt_in_pass.bpf.c' | 'lwt_in_drop_udp.bpf.c') {
  return guest.attach({
    type: 'lwt_in',
    object: guest.objectPath(source),
    section: 'lwt_in',
    prefix: `${bc.b.ip}/32`,
    dev: bc.a.ifname,
    netns: net.b.netns,
  });
}

test('packets B forwards to C run the program once each and all arrive', async () => {
  await attachInB('lwt_in_pass.bpf.c');
  const sink = await UdpSink.open(guest.agent, { netns: bc.b.netns, port: PORT });

  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: bc.b.ip, dport: PORT, count: N, size: 64 });
  const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: bc.b.ip, count: N, size: 56 });
  const tcp = await send(guest.agent, { netns: net.a.netns, proto: 'tcp', dst: bc.b.ip, dport: 9, count: N, size: 0 });

  expect(await sink.stats({ expect: N })).toMatchObject({ packets: N, bytes: N * 64 });
  expect(icmp.replies).toBe(N);
  expect(tcp.replies).toBe(N);
  expect(await counted('udp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('udp', 64)) });
  expect(await counted('icmp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('icmp', 56)) });
  expect(await counted('tcp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('tcp', 0)) });
  // C's replies are forwarded by B too, but through the route to A, which has no program.
  expect(await protocolsSeen()).toEqual([IP_PROTO.icmp, IP_PROTO.tcp, IP_PROTO.udp]);
});

test('a BPF_DROP verdict on input drops the forwarded UDP in B while ICMP goes on', async () => {
  await attachInB('lwt_in_drop_udp.bpf.c');
  const sink = await UdpSink.open(guest.agent, { netns: bc.b.netns, port: PORT });
  const cBefore = await linkStats(guest, bc.b.ifname, bc.b.netns);

  // A's sends succeed: the packets leave A and are dropped in B.
  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: bc.b.ip, dport: PORT, count: N, size: 64 });
  const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: bc.b.ip, count: N, size: 56 });

  expect((await sink.stats({ judged: udpJudged(N) })).packets).toBe(0);
  expect(icmp.replies).toBe(N);
  const cAfter = await linkStats(guest, bc.b.ifname, bc.b.netns);
  expect(cAfter.rxPackets - cBefore.rxPackets).toBe(N); // the echo requests only
  expect(await counted('udp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('udp', 64)) });
  expect(await counted('icmp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('icmp', 56)) });
  expect(await protocolsSeen()).toEqual([IP_PROTO.icmp, IP_PROTO.udp]);
});

test('packets B sends itself over the route, and packets for B\'s own address, do not run the program', async () => {
  await attachInB('lwt_in_drop_udp.bpf.c');
  const atC = await UdpSink.open(guest.agent, { netns: bc.b.netns, port: PORT });
  const atB = await UdpSink.open(guest.agent, { netns: net.b.netns, port: PORT });

  // B's own datagrams to C take the same route on output: the input program is not run, none dropped.
  await send(guest.agent, { netns: net.b.netns, proto: 'udp', dst: bc.b.ip, dport: PORT, count: N, size: 64 });
  // A's datagrams to B itself are delivered locally through B's own (local) route.
  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: PORT, count: N, size: 64 });
  expect(await atC.stats({ expect: N })).toMatchObject({ packets: N, bytes: N * 64 });
  expect(await atB.stats({ expect: N })).toMatchObject({ packets: N, bytes: N * 64 });
  expect(await protocolsSeen()).toEqual([]);

  // The program is there all along: A's datagrams to C are dropped and counted.
  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: bc.b.ip, dport: PORT, count: 3, size: 64 });
  expect((await atC.stats({ judged: udpJudged(3) })).packets).toBe(0);
  expect(await counted('udp')).toEqual({ packets: 3n, bytes: BigInt(3 * ipLength('udp', 64)) });
});

test('on a local route, the program runs for locally delivered packets and its drop verdict holds', async () => {
  // B gets a local address through a `local` route (table local) that carries the program;
  // A reaches it through B.
  const LOCAL = '10.200.249.9';
  await guest.exec(`ip -n ${net.a.netns} route add 10.200.249.0/24 via ${net.b.ip} dev ${net.a.ifname}`);
  await guest.attach({
    type: 'lwt_in',
    object: guest.objectPath('lwt_in_drop_udp.bpf.c'),
    section: 'lwt_in',
    prefix: `local ${LOCAL}/32`,
    dev: 'lo',
    netns: net.b.netns,
  });
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: PORT });

  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: LOCAL, dport: PORT, count: N, size: 64 });
  const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: LOCAL, count: N, size: 56 });
  // Datagrams to B's other address are delivered: the drop is the program's.
  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: PORT, count: 2, size: 64 });

  expect(await sink.stats({ expect: 2 })).toMatchObject({ packets: 2, bytes: 2 * 64 });
  expect(icmp.replies).toBe(N);
  expect(await counted('udp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('udp', 64)) });
  expect(await counted('icmp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('icmp', 56)) });
  expect(await protocolsSeen()).toEqual([IP_PROTO.icmp, IP_PROTO.udp]);
});

// Issue 11: the packet writes lwt_in refuses at load time (suites/include/lwt_write.ts).
describeRefusedWrites(guest, 'in');
