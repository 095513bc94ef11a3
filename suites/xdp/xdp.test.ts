// XDP on a veth pair: verdicts, per-protocol counters, XDP_TX, verifier rejection.
// Traffic goes from namespace A to namespace B; the program sits on B's end of the pair.
import { describe, expect, test } from 'vitest';
import { type BpfObject, expectVerifierRejects, frames, InetSocket, IP_PROTO, mac, type Proto, readU64s, send, SETTLE_MS, u32, UdpSink, useGuest, useVethPair } from '../../harness/index.js';

const guest = useGuest({
  suite: 'xdp',
  from: import.meta.url,
  sources: ['xdp_verdicts.bpf.c', 'xdp_tx.bpf.c', 'xdp_bad_access.bpf.c', 'xdp_redirect_map.bpf.c', 'xdp_abort.bpf.c', 'xdp_adjust_head.bpf.c'],
});

const net = useVethPair(guest);

const N = 20;
const UDP_PORT = 5001;

/** XDP on B's end of the pair. */
const onB = (obj: BpfObject, prog: string, mode: 'generic' | 'native' = 'generic') =>
  guest.attach({ type: 'xdp', obj, prog, ifname: net.b.ifname, netns: net.b.netns, mode });

/** The kernel's id of a program of a loaded object. */
const progId = (obj: BpfObject, name: string) => obj.programs.find((p) => p.name === name)?.id;

/** Reads {packets, bytes} for an IP protocol from a counter map. */
async function counter(obj: BpfObject, map: string, proto: Proto) {
  const hex = await obj.map(map).lookup(u32(IP_PROTO[proto]));
  if (hex === null) return { packets: 0n, bytes: 0n };
  const [packets, bytes] = readU64s(hex);
  return { packets, bytes };
}

for (const mode of ['generic', 'native'] as const) {
  describe(`${mode} XDP on veth`, () => {
    test('XDP_DROP drops every packet and counts each one', async (ctx) => {
      if (mode === 'native') guest.requireKernel(ctx, '4.19', 'native XDP on veth');
      const obj = await guest.load('xdp_verdicts.bpf.c');
      try {
        const xdp = await onB(obj, 'xdp_drop', mode);
        expect({ mode: xdp.mode, id: xdp.progId }, 'what the kernel reports attached').toEqual({ mode, id: progId(obj, 'xdp_drop') });
        expect(progId(obj, 'xdp_drop')).toBeGreaterThan(0);
        const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: UDP_PORT });
        await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: UDP_PORT, count: N, size: 64 });
        // The exact ends: the program has judged every echo request, and every datagram.
        const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: N, size: 56, judged: { map: obj.map('proto_array'), key: u32(IP_PROTO.icmp), expected: N } });
        const arrived = await sink.stats({ judged: { count: async () => (await counter(obj, 'proto_array', 'udp')).packets, expected: N } });
        await sink.close();

        expect(arrived.packets).toBe(0);
        expect(icmp.replies).toBe(0);
        expect(await counter(obj, 'proto_array', 'udp')).toEqual(frames('udp', N, 64));
        expect(await counter(obj, 'proto_array', 'icmp')).toEqual(frames('icmp', N, 56));
      } finally {
        await obj.unload();
      }
    });

    test('XDP_PASS lets every packet through and counts each one', async (ctx) => {
      if (mode === 'native') guest.requireKernel(ctx, '4.19', 'native XDP on veth');
      const obj = await guest.load('xdp_verdicts.bpf.c');
      try {
        const xdp = await onB(obj, 'xdp_pass', mode);
        expect({ mode: xdp.mode, id: xdp.progId }, 'what the kernel reports attached').toEqual({ mode, id: progId(obj, 'xdp_pass') });
        expect(progId(obj, 'xdp_pass')).toBeGreaterThan(0);
        const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: UDP_PORT });
        await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: UDP_PORT, count: N, size: 100 });
        const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: N, size: 56 });
        const arrived = await sink.stats({ expect: N });
        await sink.close();

        expect(arrived.packets).toBe(N);
        expect(arrived.bytes).toBe(N * 100);
        expect(icmp.replies).toBe(N);
        expect(await counter(obj, 'proto_array', 'udp')).toEqual(frames('udp', N, 100));
        expect(await counter(obj, 'proto_array', 'icmp')).toEqual(frames('icmp', N, 56));
      } finally {
        await obj.unload();
      }
    });
  });
}

test('per-protocol counters in an array and a hash match ICMP, UDP and TCP traffic exactly', async () => {
  const obj = await guest.load('xdp_verdicts.bpf.c');
  try {
    await onB(obj, 'xdp_pass');
    const plan = { icmp: { count: 7, size: 40 }, udp: { count: 11, size: 200 }, tcp: { count: 5, size: 0 } } as const;
    const results: Record<string, number> = {};
    for (const [proto, p] of Object.entries(plan) as [Proto, { count: number; size: number }][]) {
      // TCP SYNs to a closed port: each one is answered by exactly one RST.
      const r = await send(guest.agent, { netns: net.a.netns, proto, dst: net.b.ip, dport: 9, count: p.count, size: p.size });
      results[proto] = r.replies;
    }
    expect(results.icmp).toBe(plan.icmp.count);
    expect(results.tcp).toBe(plan.tcp.count);
    for (const map of ['proto_array', 'proto_hash']) {
      for (const [proto, p] of Object.entries(plan) as [Proto, { count: number; size: number }][]) {
        expect(await counter(obj, map, proto), `${map}[${proto}]`).toEqual(frames(proto, p.count, p.size));
      }
    }
    // Nothing else was counted: the hash holds exactly the three protocols sent.
    const keys = (await obj.map('proto_hash').dump()).map((e) => Buffer.from(e.key, 'hex').readUInt32LE(0)).sort((x, y) => x - y);
    expect(keys).toEqual([IP_PROTO.icmp, IP_PROTO.tcp, IP_PROTO.udp]);
  } finally {
    await obj.unload();
  }
});

test('XDP_TX sends UDP datagrams back to the sender instead of up the stack', async () => {
  const obj = await guest.load('xdp_tx.bpf.c');
  try {
    await onB(obj, 'xdp_udp_echo');
    const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 7 });
    const r = await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, sport: 40007, dport: 7, count: N, size: 32, waitMs: 300 });
    const atB = await sink.stats({ judged: { count: async () => readU64s((await obj.map('tx_count').lookup(u32(0)))!)[0], expected: N } });
    await sink.close();

    expect(r.replies).toBe(N);
    expect(r.replyBytes).toBe(N * 32);
    expect(atB.packets).toBe(0);
    const [txed] = readU64s((await obj.map('tx_count').lookup(u32(0)))!);
    expect(txed).toBe(BigInt(N));
  } finally {
    await obj.unload();
  }
});

test('a program the verifier rejects fails to load with the verifier\'s own message', async () => {
  await expectVerifierRejects(guest.load('xdp_bad_access.bpf.c'), 'xdp_unchecked', /invalid access to packet/);
});

describe('XDP_REDIRECT', () => {
  // A second pair: its near end in B, next to the XDP program; its far end in a namespace of its
  // own, C, which also owns B's address (on lo) so that datagrams for B are delivered there.
  const side = useVethPair(guest, () => ({ aNetns: net.b.netns }));

  test('XDP_REDIRECT through a devmap sends UDP out of a second veth pair into a third namespace', async (ctx) => {
    guest.requireKernel(ctx, '4.14', 'BPF_MAP_TYPE_DEVMAP and generic XDP_REDIRECT through it');
    await guest.exec(`ip -n ${side.b.netns} addr add ${net.b.ip}/32 dev lo && ip -n ${side.b.netns} route add ${net.a.ip}/32 dev ${side.b.ifname}`);
    const link = side.a;
    const obj = await guest.load('xdp_redirect_map.bpf.c');
    try {
      // The kernel resolves a devmap's ifindex in the namespace of whoever updates it: update from B.
      await obj.map('tx_port').update(u32(0), u32(link.ifindex), { netns: net.b.netns });
      await obj.map('redirect_macs').update(u32(0), mac(side.b.mac) + mac(side.a.mac));
      await onB(obj, 'xdp_redirect_devmap');

      const atB = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 6001 });
      const atC = await UdpSink.open(guest.agent, { netns: side.b.netns, port: 6001 });
      await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 6001, count: N, size: 48 });
      const icmp = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: N, size: 56 });
      const c = await atC.stats({ expect: N });
      // Judged: every datagram to the port redirected (slot 0) or not (slot 2).
      const redirects = async () => readU64s((await obj.map('redirect_count').lookup(u32(0)))!)[0] + readU64s((await obj.map('redirect_count').lookup(u32(2)))!)[0];
      const b = await atB.stats({ judged: { count: redirects, expected: N } });

      expect(c.packets).toBe(N);
      expect(c.bytes).toBe(N * 48);
      expect(b.packets).toBe(0);
      // What the program passes still reaches B.
      expect(icmp.replies).toBe(N);
      const counts = [];
      for (const k of [0, 1, 2]) counts.push(readU64s((await obj.map('redirect_count').lookup(u32(k)))!)[0]);
      expect(counts).toEqual([BigInt(N), BigInt(N), 0n]);
    } finally {
      await obj.unload();
    }
  });
});

// Issue 11: XDP_ABORTED as the kernel reports it, through the xdp:xdp_exception tracepoint, and
// bpf_xdp_adjust_head changing the frame the stack receives.
describe('XDP_ABORTED and bpf_xdp_adjust_head', () => {
  const ABORT_PORT = 6000;
  const PASS_PORT = 6001;
  const DROP_PORT = 6002;
  const XDP_ABORTED = 0;

  test('XDP_ABORTED drops the frame and fires xdp:xdp_exception once per frame, naming the program and device; XDP_DROP fires nothing', async () => {
    // The record layout the program reads (struct xdp_exception_rec), from the running kernel.
    const text = await guest.exec(
      `[ -d /sys/kernel/tracing/events ] || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true\n` +
        `for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do f=$d/events/xdp/xdp_exception/format; [ -r $f ] && { cat $f; exit 0; }; done; exit 1`,
    );
    const offsets = Object.fromEntries([...text.matchAll(/field:[^;]*?(\w+);\s*offset:(\d+);/g)].map((m) => [m[1], Number(m[2])]));
    expect(offsets).toMatchObject({ prog_id: 8, act: 12, ifindex: 16 });

    const obj = await guest.load('xdp_abort.bpf.c');
    await guest.attach({ type: 'tracepoint', obj, prog: 'on_xdp_exception', category: 'xdp', name: 'xdp_exception' });
    await guest.attach({ type: 'xdp', obj, prog: 'xdp_abort_udp', ifname: net.b.ifname, netns: net.b.netns });
    const xdpId = obj.programs.find((p) => p.name === 'xdp_abort_udp')!.id!;
    const sinks = await Promise.all([ABORT_PORT, PASS_PORT, DROP_PORT].map((port) => UdpSink.open(guest.agent, { netns: net.b.netns, port })));

    await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: ABORT_PORT, count: N, size: 32 });
    await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: DROP_PORT, count: 7, size: 32 });
    await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: PASS_PORT, count: 5, size: 32 });

    expect((await sinks[1].stats({ expect: 5 })).packets).toBe(5);
    /** The xdp:xdp_exception events the tracepoint program recorded, per XDP action. */
    const exceptions = async () =>
      (await obj.map('exceptions').dump())
        .map((e) => ({ act: Buffer.from(e.key, 'hex').readUInt32LE(0), v: readU64s(e.value!) }))
        .filter((e) => e.v[0] !== 0n)
        .map((e) => ({ act: e.act, events: e.v[0], progId: Number(e.v[1]), ifindex: Number(e.v[2]) }));
    // Judged: xdp:xdp_exception fired for every aborted frame.
    const aborted = async () => (await exceptions()).filter((e) => e.act === XDP_ABORTED).reduce((n, e) => n + e.events, 0n);
    expect((await sinks[0].stats({ judged: { count: aborted, expected: N } })).packets).toBe(0);
    expect((await sinks[2].stats({ waitMs: SETTLE_MS })).packets).toBe(0);
    expect(await exceptions()).toEqual([{ act: XDP_ABORTED, events: BigInt(N), progId: xdpId, ifindex: net.b.ifindex }]);
  });

  test('bpf_xdp_adjust_head takes 8 bytes off the front of the payload: B receives each datagram without them', async () => {
    const POP = 8;
    const obj = await guest.load('xdp_adjust_head.bpf.c');
    await guest.attach({ type: 'xdp', obj, prog: 'xdp_pop_payload', ifname: net.b.ifname, netns: net.b.netns });
    const popped = await InetSocket.open(guest.agent, { netns: net.b.netns, proto: 'udp', addr: net.b.ip, port: PASS_PORT });
    const other = await InetSocket.open(guest.agent, { netns: net.b.netns, proto: 'udp', addr: net.b.ip, port: DROP_PORT });
    const sender = await InetSocket.open(guest.agent, { netns: net.a.netns, proto: 'udp', addr: net.a.ip, port: 40000 });
    const data = 'HEAD8BYTpayload that stays';

    await sender.send({ data, count: N, dst: net.b.ip, dport: PASS_PORT });
    await sender.send({ data, count: 5, dst: net.b.ip, dport: DROP_PORT });

    const got = await popped.recv({ expect: N });
    expect(got).toEqual(Array(N).fill({ addr: net.a.ip, port: 40000, data: data.slice(POP) }));
    const untouched = await other.recv({ expect: 5 });
    expect(untouched).toEqual(Array(5).fill({ addr: net.a.ip, port: 40000, data }));
    // B's UDP layer took every shortened datagram: no length or checksum errors.
    const snmp = await guest.exec(`ip netns exec ${net.b.netns} cat /proc/net/snmp`);
    const [names, values] = snmp.split('\n').filter((l) => l.startsWith('Udp: ')).map((l) => l.split(/\s+/).slice(1));
    const udpMib = Object.fromEntries(names.map((n, i) => [n, Number(values[i])]));
    expect(udpMib).toMatchObject({ InDatagrams: N + 5, InErrors: 0, InCsumErrors: 0 });
    const counts = await Promise.all([0, 1, 2].map(async (k) => readU64s((await obj.map('pops').lookup(u32(k)))!)[0]));
    expect(counts).toEqual([BigInt(N), BigInt(N * POP), 0n]);
  });
});
