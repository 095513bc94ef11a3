// tcx (6.6): sched_cls programs on a device's hook as bpf_links, next to legacy tc. Traffic is UDP
// from namespace A to a sink on port 9000 in namespace B, through B's ingress, where a tcx program
// and a legacy cls_bpf classifier (tc filter … bpf da, on a clsact qdisc) both sit. tcx programs
// run first: TCX_NEXT hands the packet to the legacy classifier, TCX_PASS (TC_ACT_OK) ends the
// hook so that the legacy classifier never sees it, TCX_DROP drops it. Two tcx programs run in the
// order they were attached, or as BPF_F_BEFORE places them.
import { expect, test } from 'vitest';
import { type BpfObject, readU64s, send, TC_PIN_DIR, u32, UdpSink, useGuest, useVethPair } from '../../harness/index.js';

const guest = useGuest({ suite: 'tcx', from: import.meta.url, sources: ['tcx_progs.bpf.c', 'tcx_legacy.bpf.c'] });
const net = useVethPair(guest);

const PORT = 9000;
const N = 10;
const VERDICT = { next: -1, pass: 0, drop: 2 } as const;
// Slots of `stats` (tcx_progs.bpf.c).
const S = { clock: 0, firstSeen: 1, secondSeen: 2, firstLastTick: 3, secondLastTick: 4 } as const;

async function stats(obj: BpfObject) {
  const out = {} as Record<keyof typeof S, bigint>;
  for (const [k, slot] of Object.entries(S)) out[k as keyof typeof S] = readU64s((await obj.map('stats').lookup(u32(slot)))!)[0];
  return out;
}
async function setVerdict(obj: BpfObject, v: number) {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  await obj.map('verdict').update(u32(0), b.toString('hex'));
}
const legacySeen = async () => readU64s((await guest.pinnedMap(`${TC_PIN_DIR}/legacy_seen`).lookup(u32(0)))!)[0];
const tcxAt = (obj: BpfObject, prog: string, place: { before?: string; after?: string } = {}) =>
  guest.attach({ type: 'tcx', obj, prog, ifname: net.b.ifname, netns: net.b.netns, direction: 'ingress', ...place });
const traffic = () => send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: PORT, count: N, size: 40 });

test('a tcx program\'s verdict decides whether the legacy cls_bpf classifier on the same hook sees the packet: NEXT yes, PASS no, DROP no and the packet is gone', async () => {
  const obj = await guest.load('tcx_progs.bpf.c');
  await guest.attach({ type: 'sched_cls', ifname: net.b.ifname, netns: net.b.netns, direction: 'ingress', object: guest.objectPath('tcx_legacy.bpf.c'), section: 'tc' });
  const link = await tcxAt(obj, 'first');
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, addr: net.b.ip, port: PORT });

  let seen = 0n;
  let legacy = 0n;
  for (const [name, verdict, delivered, toLegacy] of [
    ['TCX_NEXT', VERDICT.next, N, N],
    ['TCX_PASS', VERDICT.pass, N, 0],
    ['TCX_DROP', VERDICT.drop, 0, 0],
  ] as const) {
    await setVerdict(obj, verdict);
    await traffic();
    seen += BigInt(N);
    legacy += BigInt(toLegacy);
    const judged = { count: async () => (await stats(obj)).firstSeen, expected: seen };
    expect((await sink.stats(delivered ? { expect: delivered, waitMs: 500 } : { judged })).packets, `${name}: delivered to the sink`).toBe(delivered);
    expect((await stats(obj)).firstSeen, `${name}: seen by the tcx program`).toBe(seen);
    expect(await legacySeen(), `${name}: seen by the legacy classifier`).toBe(legacy);
  }

  // Without the tcx link, the legacy classifier sees every packet again.
  await link.detach();
  await traffic();
  expect((await sink.stats({ expect: N, waitMs: 500 })).packets, 'tcx detached: delivered').toBe(N);
  expect((await stats(obj)).firstSeen, 'tcx detached: seen by the tcx program').toBe(seen);
  expect(await legacySeen(), 'tcx detached: seen by the legacy classifier').toBe(legacy + BigInt(N));
});

test('two tcx programs run in the order they were attached, and BPF_F_BEFORE puts one in front; a DROP ends the packet, and programs behind it never see it', async () => {
  const obj = await guest.load('tcx_progs.bpf.c');
  await setVerdict(obj, VERDICT.next);
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, addr: net.b.ip, port: PORT });

  // Appended: first, then second. Each packet ticks the clock twice, first's tick before second's.
  const a1 = await tcxAt(obj, 'first');
  const a2 = await tcxAt(obj, 'second');
  await traffic();
  expect((await sink.stats({ expect: N, waitMs: 500 })).packets).toBe(N);
  expect(await stats(obj), 'appended in order').toEqual({ clock: 2n * BigInt(N), firstSeen: BigInt(N), secondSeen: BigInt(N), firstLastTick: 2n * BigInt(N) - 1n, secondLastTick: 2n * BigInt(N) });
  await a2.detach();
  await a1.detach();

  // second attached in front of first: second ticks first.
  const b1 = await tcxAt(obj, 'first');
  await tcxAt(obj, 'second', { before: 'first' });
  await traffic();
  expect((await sink.stats({ expect: N, waitMs: 500 })).packets).toBe(N);
  expect(await stats(obj), 'second placed before first').toEqual({ clock: 4n * BigInt(N), firstSeen: 2n * BigInt(N), secondSeen: 2n * BigInt(N), firstLastTick: 4n * BigInt(N), secondLastTick: 4n * BigInt(N) - 1n });

  // first (behind) drops: second, in front, still sees every packet; nothing is delivered.
  await setVerdict(obj, VERDICT.drop);
  await traffic();
  const firstSeen = async () => (await stats(obj)).firstSeen;
  expect((await sink.stats({ judged: { count: firstSeen, expected: 3n * BigInt(N) } })).packets, 'first drops behind second').toBe(0);
  expect(await stats(obj), 'first drops behind second').toMatchObject({ firstSeen: 3n * BigInt(N), secondSeen: 3n * BigInt(N) });

  // first moved in front of second (a new link, BPF_F_BEFORE), still dropping: second never sees them.
  await b1.detach();
  await tcxAt(obj, 'first', { before: 'second' });
  await traffic();
  expect((await sink.stats({ judged: { count: firstSeen, expected: 4n * BigInt(N) } })).packets, 'first drops in front of second').toBe(0);
  expect(await stats(obj), 'first drops in front of second').toMatchObject({ firstSeen: 4n * BigInt(N), secondSeen: 3n * BigInt(N) });
});
