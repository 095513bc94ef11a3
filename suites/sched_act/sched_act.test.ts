// sched_act: a BPF program as a tc action (act_bpf) under a matchall classifier on a clsact qdisc
// (`tc filter add ... matchall action bpf obj ... sec action`). The action's return value is the
// packet's verdict. Traffic goes from namespace A to namespace B; the maps are read and written
// through the pins iproute2 makes in /sys/fs/bpf/tc/globals.
import { expect, test } from 'vitest';
import { type Endpoint, frameLength, frames, IP_PROTO, ipLength, type Proto, readU64s, send, sendAllowingErrors, TC_PIN_DIR, u32, UdpSink, useGuest, useVethPair } from '../../harness/index.js';

const guest = useGuest({
  suite: 'sched_act',
  from: import.meta.url,
  sources: ['act_verdict.bpf.c'],
});

const net = useVethPair(guest);

const N = 20;
// include/uapi/linux/pkt_cls.h
const TC_ACT_UNSPEC = -1;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;

/** A map of the action, pinned by tc. */
const pinned = (map: string) => guest.pinnedMap(`${TC_PIN_DIR}/${map}`);

async function attachAction(ep: Endpoint, direction: 'ingress' | 'egress') {
  await guest.attach({ type: 'sched_act', ifname: ep.ifname, netns: ep.netns, direction, object: guest.objectPath('act_verdict.bpf.c'), section: 'action' });
}

async function setVerdict(proto: Proto, verdict: number): Promise<void> {
  await pinned('act_cfg').update(u32(IP_PROTO[proto]), u32(verdict >>> 0));
}

async function protoCount(proto: Proto) {
  const [packets, bytes] = readU64s((await pinned('act_proto_count').lookup(u32(IP_PROTO[proto])))!);
  return { packets, bytes };
}

/** Returned verdict -> packets, from the program's own hash. */
async function verdictCounts(): Promise<Record<number, bigint>> {
  const entries = await pinned('act_verdict_count').dump();
  return Object.fromEntries(entries.map((e) => [Buffer.from(e.key, 'hex').readInt32LE(0), readU64s(e.value!)[0]]));
}

/** The action's own statistics, as the kernel keeps them (tc -s). */
async function actionStats(ep: Endpoint, direction: 'ingress' | 'egress') {
  const out = await guest.exec(`nsenter --net=/var/run/netns/${ep.netns} /usr/bin/tc -s -j filter show dev ${ep.ifname} ${direction}`);
  const filters = JSON.parse(out) as { kind: string; options?: { actions?: { kind: string; stats: { packets: number; bytes: number; drops: number } }[] } }[];
  const acts = filters.flatMap((f) => f.options?.actions ?? []).filter((a) => a.kind === 'bpf');
  expect(acts).toHaveLength(1);
  const { packets, bytes, drops } = acts[0].stats;
  return { packets, bytes, drops };
}


test('ingress: TC_ACT_SHOT for UDP drops every datagram, TC_ACT_OK lets ICMP through; counts exact', async () => {
  await attachAction(net.b, 'ingress');
  await setVerdict('udp', TC_ACT_SHOT);
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5001 });
  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 5001, count: N, size: 64 });
  const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: N, size: 56 });

  expect((await sink.stats({ judged: { count: async () => (await protoCount('udp')).packets, expected: N } })).packets).toBe(0);
  expect(icmp.replies).toBe(N);
  // The program sees the frame from its MAC header on ingress too.
  expect(await protoCount('udp')).toEqual(frames('udp', N, 64));
  expect(await protoCount('icmp')).toEqual(frames('icmp', N, 56));
  expect(await verdictCounts()).toEqual({ [TC_ACT_SHOT]: BigInt(N), [TC_ACT_OK]: BigInt(N) });
  // act_bpf counts every packet it ran on (before the MAC header is pushed back on ingress: IP
  // length) and every TC_ACT_SHOT as a drop.
  expect(await actionStats(net.b, 'ingress')).toEqual({
    packets: 2 * N,
    bytes: N * ipLength('udp', 64) + N * ipLength('icmp', 56),
    drops: N,
  });
});

test('egress: TC_ACT_SHOT for ICMP stops the echo requests leaving, UDP passes; counts exact', async () => {
  await attachAction(net.a, 'egress');
  await setVerdict('icmp', TC_ACT_SHOT);
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5001 });
  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 5001, count: N, size: 100 });
  // A drop on egress may be reported to the sender as ENOBUFS; either way nothing leaves. The
  // exact end: the action has judged every echo request.
  const icmp = await sendAllowingErrors(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: N, size: 56, judged: { map: pinned('act_proto_count'), key: u32(IP_PROTO.icmp), expected: N } });

  const arrived = await sink.stats({ expect: N });
  expect(arrived.packets).toBe(N);
  expect(arrived.bytes).toBe(N * 100);
  expect(icmp.sent + (icmp.sendErrors ?? 0)).toBe(N);
  expect(icmp.replies).toBe(0);
  expect(await protoCount('udp')).toEqual(frames('udp', N, 100));
  expect(await protoCount('icmp')).toEqual(frames('icmp', N, 56));
  expect(await verdictCounts()).toEqual({ [TC_ACT_SHOT]: BigInt(N), [TC_ACT_OK]: BigInt(N) });
  expect(await actionStats(net.a, 'egress')).toEqual({
    packets: 2 * N,
    bytes: N * frameLength('udp', 100) + N * frameLength('icmp', 56),
    drops: N,
  });
});

test('TC_ACT_UNSPEC and an unknown return value are not drops: the packets pass', async () => {
  await attachAction(net.b, 'ingress');
  // UNSPEC takes the action's control verdict (pipe, the default); act_bpf turns unknown values into UNSPEC.
  await setVerdict('udp', TC_ACT_UNSPEC);
  await setVerdict('tcp', 42);
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5001 });
  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 5001, count: N, size: 64 });
  // SYNs to a closed port: B answers each one with a RST, so each SYN reached B's TCP.
  const tcp = await send(guest.agent, { netns: net.a.netns, proto: 'tcp', dst: net.b.ip, dport: 9, count: N, size: 0 });

  expect(await sink.stats({ expect: N })).toMatchObject({ packets: N, bytes: N * 64 });
  expect(tcp.replies).toBe(N);
  expect(await verdictCounts()).toEqual({ [TC_ACT_UNSPEC]: BigInt(N), 42: BigInt(N) });
  // On ingress the Ethernet header is already pulled: the action counts IP lengths (on egress, frames).
  expect(await actionStats(net.b, 'ingress')).toEqual({ packets: 2 * N, bytes: N * ipLength('udp', 64) + N * ipLength('tcp', 0), drops: 0 });
});

test('the verdict follows the pinned map from one packet to the next', async () => {
  await attachAction(net.b, 'ingress');
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5001 });
  const arrivals: number[] = [];
  for (const verdict of [TC_ACT_OK, TC_ACT_SHOT, TC_ACT_OK]) {
    await setVerdict('udp', verdict);
    await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 5001, count: N, size: 32 });
    arrivals.push((await sink.stats({ expect: verdict === TC_ACT_OK ? N : undefined })).packets);
  }
  expect(arrivals).toEqual([N, 0, N]);
  expect(await protoCount('udp')).toEqual(frames('udp', 3 * N, 32));
  expect(await verdictCounts()).toEqual({ [TC_ACT_OK]: BigInt(2 * N), [TC_ACT_SHOT]: BigInt(N) });
  expect(await actionStats(net.b, 'ingress')).toMatchObject({ packets: 3 * N, drops: N });
});
