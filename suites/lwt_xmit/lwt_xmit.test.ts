// lwt_xmit: BPF programs on a route's transmit path (`ip route add ... encap bpf xmit`), loaded by
// iproute2 in namespace A. One rewrites the UDP destination port with bpf_skb_store_bytes and
// bpf_l4_csum_replace; the other pushes an outer IPv4 header (IPIP) with bpf_lwt_push_encap and
// an ipip tunnel device in namespace B takes it off again. What B receives is the check; the
// programs' maps (pinned by iproute2) are read through their pins.
import { expect, test } from 'vitest';
import { ETH_HLEN, frameLength, IP_PIN_DIR, IP_PROTO, ipLength, ipv4, linkStats, mac, type Proto, readU64s, send, sendAllowingErrors, SETTLE_MS, u32, UdpSink, useGuest, useVethPair, VethPair } from '../../harness/index.js';
import { describe } from 'vitest';

const guest = useGuest({
  suite: 'lwt_xmit',
  from: import.meta.url,
  sources: ['lwt_xmit_rewrite.bpf.c', 'lwt_xmit_ipip.bpf.c', 'lwt_xmit_drop_udp.bpf.c', 'lwt_xmit_redirect.bpf.c'],
});

const EPERM = 1;
const N = 20;
// lwt_xmit_rewrite.bpf.c rewrites FROM_PORT into TO_PORT.
const FROM_PORT = 5001;
const TO_PORT = 5002;
const OTHER_PORT = 5003;
/** The address behind the IPIP route: B holds it on its tunnel device. */
const TUNNELED = '10.200.250.2';
const IPV4_HLEN = 20;

const net = useVethPair(guest);

async function lookupPinned(map: string, key: number): Promise<bigint[]> {
  return readU64s((await guest.pinnedMap(`${IP_PIN_DIR}/${map}`).lookup(u32(key)))!);
}

/** {packets, bytes} the program counted for a protocol (bytes: IPv4 length as the program saw it). */
async function counted(proto: Proto) {
  const [packets, bytes] = await lookupPinned('lwt_xmit_stats', IP_PROTO[proto]);
  return { packets, bytes };
}
/** Judged: the program counted `expected` UDP packets (it counts each before its verdict). */
const udpJudged = (expected: number) => ({ count: async () => (await counted('udp')).packets, expected });


/** A route from A to `dst`/32 over the pair, with the source's lwt_xmit program on it. */
function attachXmit(source: string, dst = net.b.ip) {
  return guest.attach({ type: 'lwt_xmit', object: guest.objectPath(source), section: 'lwt_xmit', prefix: `${dst}/32`, dev: net.a.ifname, netns: net.a.netns });
}

test('the program rewrites the UDP destination port on the way out and B receives the datagrams on the new port', async () => {
  await attachXmit('lwt_xmit_rewrite.bpf.c');
  const [from, to, other] = await Promise.all(
    [FROM_PORT, TO_PORT, OTHER_PORT].map((port) => UdpSink.open(guest.agent, { netns: net.b.netns, port })),
  );

  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: FROM_PORT, count: N, size: 64 });
  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: OTHER_PORT, count: N, size: 48 });
  const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: N, size: 56 });

  // Every datagram sent to FROM_PORT arrived on TO_PORT, intact (all N there: none is left to
  // arrive on FROM_PORT but a surplus); those to OTHER_PORT were left alone.
  expect(await to.stats({ expect: N })).toMatchObject({ packets: N, bytes: N * 64 });
  expect(await from.stats({ waitMs: SETTLE_MS })).toMatchObject({ packets: 0 });
  expect(await other.stats({ expect: N })).toMatchObject({ packets: N, bytes: N * 48 });
  expect(icmp.replies).toBe(N);
  // B's UDP layer accepted all of them: no checksum errors, nothing to a closed port.
  const snmp = await guest.exec(`ip netns exec ${net.b.netns} cat /proc/net/snmp`);
  const [names, values] = snmp.split('\n').filter((l) => l.startsWith('Udp: ')).map((l) => l.split(/\s+/).slice(1));
  const udpMib = Object.fromEntries(names.map((n, i) => [n, Number(values[i])]));
  expect(udpMib).toMatchObject({ InDatagrams: 2 * N, InCsumErrors: 0, NoPorts: 0, InErrors: 0 });

  expect(await lookupPinned('lwt_xmit_rewrites', 0)).toEqual([BigInt(N)]);
  expect(await counted('udp')).toEqual({ packets: BigInt(2 * N), bytes: BigInt(N * ipLength('udp', 64) + N * ipLength('udp', 48)) });
  expect(await counted('icmp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('icmp', 56)) });
});

test('BPF_DROP on the transmit path fails each UDP send with EPERM and nothing reaches B; ICMP passes', async () => {
  await attachXmit('lwt_xmit_drop_udp.bpf.c');
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: FROM_PORT });
  const vethBefore = await linkStats(guest, net.b.ifname, net.b.netns);

  const udp = await sendAllowingErrors(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: FROM_PORT, count: N, size: 64 });
  const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: N, size: 56 });

  expect(udp, 'every UDP send fails with the verdict\'s EPERM').toMatchObject({ sent: 0, sendErrors: N, sendErrno: EPERM });
  expect(await sink.stats({ judged: udpJudged(N) }), 'B\'s socket receives nothing').toMatchObject({ packets: 0 });
  expect(icmp.replies, 'ICMP is passed and answered').toBe(N);
  // Only the echo requests crossed the wire to B.
  expect((await linkStats(guest, net.b.ifname, net.b.netns)).rxPackets - vethBefore.rxPackets).toBe(N);
  expect(await counted('udp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('udp', 64)) });
  expect(await counted('icmp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('icmp', 56)) });
});

test('datagrams to an address outside the route\'s prefix keep their port and are not seen', async () => {
  const other = net.b.ip.replace(/\.2$/, '.3');
  await guest.exec(
    `ip -n ${net.b.netns} addr add ${other}/24 dev ${net.b.ifname}\n` +
      `ip -n ${net.a.netns} neigh replace ${other} lladdr ${net.b.mac} dev ${net.a.ifname} nud permanent`,
  );
  await attachXmit('lwt_xmit_rewrite.bpf.c');
  const from = await UdpSink.open(guest.agent, { netns: net.b.netns, port: FROM_PORT });
  const to = await UdpSink.open(guest.agent, { netns: net.b.netns, port: TO_PORT });

  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: other, dport: FROM_PORT, count: N, size: 64 });
  expect(await from.stats({ expect: N })).toMatchObject({ packets: N, bytes: N * 64 });
  // All N arrived on FROM_PORT: none is left to arrive on TO_PORT.
  expect(await to.stats({ waitMs: SETTLE_MS })).toMatchObject({ packets: 0 });
  expect(await lookupPinned('lwt_xmit_rewrites', 0)).toEqual([0n]);
  expect(await counted('udp')).toEqual({ packets: 0n, bytes: 0n });

  // The same datagrams to the /32 do go through the program.
  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: FROM_PORT, count: 3, size: 64 });
  expect(await to.stats({ expect: 3 })).toMatchObject({ packets: 3, bytes: 3 * 64 });
  expect(await from.stats({ waitMs: SETTLE_MS })).toMatchObject({ packets: 0 });
  expect(await lookupPinned('lwt_xmit_rewrites', 0)).toEqual([3n]);
});

/** B: an ipip tunnel from A that holds TUNNELED; A: the route to TUNNELED with the IPIP program. */
async function ipipSetup() {
  await guest.exec(
    [
      'set -e',
      `ip -n ${net.b.netns} link add bhtun type ipip local ${net.b.ip} remote ${net.a.ip}`,
      `ip -n ${net.b.netns} link set bhtun up`,
      `ip -n ${net.b.netns} addr add ${TUNNELED}/32 dev bhtun`,
    ].join('\n'),
  );
  await attachXmit('lwt_xmit_ipip.bpf.c', TUNNELED);
}

/** lwt_xmit_encap_result: [encapsulated, dropped without configuration, push failures]. */
async function encapResults(): Promise<bigint[]> {
  return Promise.all([0, 1, 2].map(async (k) => (await lookupPinned('lwt_xmit_encap_result', k))[0]));
}

test('bpf_lwt_push_encap wraps packets in IPIP and B\'s ipip tunnel receives exactly the inner packets', async (ctx) => {
  guest.requireKernel(ctx, '5.2', 'bpf_lwt_push_encap with BPF_LWT_ENCAP_IP and BPF_LWT_REROUTE');
  await ipipSetup();
  // Outer header: A -> B, written into the program's configuration through its pin.
  await guest.pinnedMap(`${IP_PIN_DIR}/lwt_xmit_encap_cfg`).update(u32(0), ipv4(net.a.ip) + ipv4(net.b.ip));
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 6001 });
  const tunBefore = await linkStats(guest, 'bhtun', net.b.netns);
  const vethBefore = await linkStats(guest, net.b.ifname, net.b.netns);

  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: TUNNELED, dport: 6001, count: N, size: 64 });
  const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: TUNNELED, count: N, size: 56 });
  const arrived = await sink.stats({ expect: N });
  const tun = await linkStats(guest, 'bhtun', net.b.netns);
  const veth = await linkStats(guest, net.b.ifname, net.b.netns);

  expect(arrived).toMatchObject({ packets: N, bytes: N * 64 });
  // Replies go back to A directly (not through the tunnel) and every one arrives.
  expect(icmp.replies).toBe(N);
  const inner = N * ipLength('udp', 64) + N * ipLength('icmp', 56);
  // The tunnel decapsulated every packet: its counters see the inner packets...
  expect(tun.rxPackets - tunBefore.rxPackets).toBe(2 * N);
  expect(tun.rxBytes - tunBefore.rxBytes).toBe(inner);
  // ...and on the wire each one carried one more IPv4 header.
  expect(veth.rxPackets - vethBefore.rxPackets).toBe(2 * N);
  expect(veth.rxBytes - vethBefore.rxBytes).toBe(inner + 2 * N * (ETH_HLEN + IPV4_HLEN));

  expect(await encapResults()).toEqual([BigInt(2 * N), 0n, 0n]);
  expect(await counted('udp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('udp', 64)) });
  expect(await counted('icmp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('icmp', 56)) });
});

test('a BPF_DROP verdict on the transmit path fails the send with EPERM and nothing reaches B', async (ctx) => {
  // The IPIP program drops every packet until it has its outer addresses.
  guest.requireKernel(ctx, '5.2', 'bpf_lwt_push_encap with BPF_LWT_ENCAP_IP (the program uses it)');
  await ipipSetup();
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 6001 });
  const vethBefore = await linkStats(guest, net.b.ifname, net.b.netns);

  const udp = await sendAllowingErrors(guest.agent, { netns: net.a.netns, proto: 'udp', dst: TUNNELED, dport: 6001, count: N, size: 64 });
  const icmp = await sendAllowingErrors(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: TUNNELED, count: N, size: 56 });

  expect(udp).toMatchObject({ sent: 0, sendErrors: N, sendErrno: EPERM });
  expect(icmp).toMatchObject({ sent: 0, sendErrors: N, sendErrno: EPERM, replies: 0 });
  expect((await sink.stats({ judged: udpJudged(N) })).packets).toBe(0);
  expect((await linkStats(guest, net.b.ifname, net.b.netns)).rxPackets).toBe(vethBefore.rxPackets);
  expect(await encapResults()).toEqual([0n, BigInt(2 * N), 0n]);
  expect(await counted('udp')).toEqual({ packets: BigInt(N), bytes: BigInt(N * ipLength('udp', 64)) });
});

// Issue 11: BPF_REDIRECT from an lwt_xmit program. A's route to ALIAS points at B; the program
// gives each packet an Ethernet header and redirects it out of a second veth pair, to namespace C.
// B and C both hold ALIAS, so where the datagrams arrive shows which way they left.
describe('bpf_redirect from lwt_xmit', () => {
  const ALIAS = '10.200.248.9';
  const PORT = 6301;

  test('the route\'s packets leave through the device the program redirects to: C receives all of them, B none; unconfigured, they go to B as routed', async () => {
    const side = await VethPair.create(guest.agent, { aNetns: net.a.netns });
    try {
      await guest.exec(
        [
          'set -e',
          `ip -n ${net.b.netns} addr add ${ALIAS}/32 dev lo`,
          `ip -n ${side.b.netns} addr add ${ALIAS}/32 dev lo`,
          `ip -n ${side.b.netns} route add ${net.a.ip}/32 dev ${side.b.ifname}`,
        ].join('\n'),
      );
      await guest.attach({
        type: 'lwt_xmit',
        object: guest.objectPath('lwt_xmit_redirect.bpf.c'),
        section: 'lwt_xmit',
        prefix: `${ALIAS}/32 via ${net.b.ip}`,
        dev: net.a.ifname,
        netns: net.a.netns,
        headroom: ETH_HLEN,
      });
      const atB = await UdpSink.open(guest.agent, { netns: net.b.netns, port: PORT });
      const atC = await UdpSink.open(guest.agent, { netns: side.b.netns, port: PORT });

      // Not configured yet: the program lets the packets go as routed, to B.
      await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: ALIAS, dport: PORT, count: 5, size: 64 });
      expect(await atB.stats({ expect: 5 })).toMatchObject({ packets: 5 });
      expect((await atC.stats({ waitMs: SETTLE_MS })).packets).toBe(0);

      await guest.pinnedMap(`${IP_PIN_DIR}/lwt_redir_cfg`).update(u32(0), u32(side.a.ifindex) + mac(side.b.mac) + mac(side.a.mac));
      const cBefore = await linkStats(guest, side.b.ifname, side.b.netns);
      const bBefore = await linkStats(guest, net.b.ifname, net.b.netns);
      await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: ALIAS, dport: PORT, count: N, size: 64 });

      expect(await atC.stats({ expect: N })).toMatchObject({ packets: N, bytes: N * 64 });
      // All N arrived at C: none is left to arrive at B.
      expect((await atB.stats({ waitMs: SETTLE_MS })).packets).toBe(0);
      const cAfter = await linkStats(guest, side.b.ifname, side.b.netns);
      const bAfter = await linkStats(guest, net.b.ifname, net.b.netns);
      // On C's wire: each datagram once, with the Ethernet header the program wrote.
      expect(cAfter.rxPackets - cBefore.rxPackets).toBe(N);
      expect(cAfter.rxBytes - cBefore.rxBytes).toBe(N * frameLength('udp', 64));
      expect(bAfter.rxPackets - bBefore.rxPackets).toBe(0);
      const results = await Promise.all([0, 1, 2].map(async (k) => (await lookupPinned('lwt_redir_count', k))[0]));
      expect(results).toEqual([BigInt(N), 5n, 0n]);
    } finally {
      await side.destroy();
    }
  });
});
