// lwt_out: a BPF program on a route's output path (`ip route add ... encap bpf out`), loaded by
// iproute2 in namespace A for a /32 route to B's address. It counts every packet sent on the
// route per IP protocol (a map iproute2 pins, read here through its pin) and drops UDP.
// A dropped packet never leaves A: the sender's sendto() fails with EPERM.
import { expect, test } from 'vitest';
import { IP_PIN_DIR, IP_PROTO, ipLength, linkStats, send, sendAllowingErrors, UdpSink, useGuest, useVethPair } from '../../harness/index.js';
import { protocolCounts } from '../include/lwt_stats.js';
import { describeRefusedWrites } from '../include/lwt_write.js';

const guest = useGuest({
  suite: 'lwt_out',
  from: import.meta.url,
  sources: ['lwt_out_drop_udp.bpf.c', 'lwt_out_write_direct.bpf.c', 'lwt_out_write_helper.bpf.c', 'lwt_out_writes_as_xmit.bpf.c'],
});

const STATS_PIN = `${IP_PIN_DIR}/lwt_out_stats`;
const EPERM = 1;
const N = 20;
const PORT = 5001;

const net = useVethPair(guest);

const { counted, udpJudged, protocolsSeen } = protocolCounts(guest, STATS_PIN);

function attachDropUdp(prefix: string) {
  return guest.attach({
    type: 'lwt_out',
    object: guest.objectPath('lwt_out_drop_udp.bpf.c'),
    section: 'lwt_out',
    prefix,
    dev: net.a.ifname,
    netns: net.a.netns,
  });
}

test('on a /32 route, UDP is dropped before it leaves while ICMP and TCP pass, each packet counted once', async () => {
  await attachDropUdp(`${net.b.ip}/32`);
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: PORT });
  const before = await linkStats(guest, net.b.ifname, net.b.netns);

  const udp = await sendAllowingErrors(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: PORT, count: N, size: 64 });
  const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: N, size: 56 });
  const tcp = await send(guest.agent, { netns: net.a.netns, proto: 'tcp', dst: net.b.ip, dport: 9, count: N, size: 0 });
  const arrived = await sink.stats({ judged: udpJudged(N) });
  const after = await linkStats(guest, net.b.ifname, net.b.netns);

  // The drop verdict reaches the sender: every sendto() failed with EPERM.
  expect(udp).toMatchObject({ sent: 0, sendErrors: N, sendErrno: EPERM });
  expect(arrived.packets).toBe(0);
  expect(icmp.replies).toBe(N);
  expect(tcp.replies).toBe(N); // one RST per SYN
  // B received exactly the ICMP requests and the TCP SYNs, no UDP.
  expect(after.rxPackets - before.rxPackets).toBe(2 * N);

  expect(await counted('udp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('udp', 64)) });
  expect(await counted('icmp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('icmp', 56)) });
  expect(await counted('tcp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('tcp', 0)) });
  // Replies come in on A's input path: the output program never saw them.
  expect(await protocolsSeen()).toEqual([IP_PROTO.icmp, IP_PROTO.tcp, IP_PROTO.udp]);
});

test('traffic to an address outside the route\'s prefix does not run the program', async () => {
  // A second address of B in the same /24: reached through the connected route, not the /32.
  const other = net.b.ip.replace(/\.2$/, '.3');
  await guest.exec(
    `ip -n ${net.b.netns} addr add ${other}/24 dev ${net.b.ifname}\n` +
      `ip -n ${net.a.netns} neigh replace ${other} lladdr ${net.b.mac} dev ${net.a.ifname} nud permanent`,
  );
  await attachDropUdp(`${net.b.ip}/32`);
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: PORT });

  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: other, dport: PORT, count: N, size: 100 });
  const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: other, count: N, size: 56 });
  const toOther = await sink.stats({ expect: N });
  expect(toOther.packets).toBe(N);
  expect(toOther.bytes).toBe(N * 100);
  expect(icmp.replies).toBe(N);
  expect(await protocolsSeen()).toEqual([]);

  // The program is there all along: a few datagrams to the /32 are counted and dropped.
  const udp = await sendAllowingErrors(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: PORT, count: 3, size: 100 });
  expect(udp).toMatchObject({ sent: 0, sendErrors: 3, sendErrno: EPERM });
  expect((await sink.stats({ judged: udpJudged(3) })).packets).toBe(0);
  expect(await counted('udp')).toEqual({ packets: 3n, bytes: BigInt(3 * ipLength('udp', 100)) });
  expect(await protocolsSeen()).toEqual([IP_PROTO.udp]);
});

test('deleting the route detaches the program: UDP flows again and the counters stand still', async () => {
  const route = await attachDropUdp(`${net.b.ip}/32`);
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: PORT });
  const dropped = await sendAllowingErrors(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: PORT, count: 5, size: 32 });
  expect(dropped).toMatchObject({ sent: 0, sendErrors: 5, sendErrno: EPERM });

  await route.detach();
  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: PORT, count: N, size: 32 });
  const arrived = await sink.stats({ expect: N });
  expect(arrived.packets).toBe(N);
  // The map outlives the program through its pin; it counted the 5 dropped ones and nothing since.
  expect(await counted('udp')).toEqual({ packets: 5n, bytes: BigInt(5 * ipLength('udp', 32)) });
});

// Issue 11: the packet writes lwt_out refuses at load time (suites/include/lwt_write.ts).
describeRefusedWrites(guest, 'out');
