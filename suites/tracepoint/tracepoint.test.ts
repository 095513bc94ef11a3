// Tracepoints: syscalls/sys_enter_getppid counts exactly the agent's calls, and net/net_dev_xmit
// plus net/netif_receive_skb read `len` (and the device name) from the record for traffic with
// exact counts through a veth pair. The C structs follow the tracepoints' format files; each test
// first checks those offsets on the running kernel.
import { describe, expect, test } from 'vitest';
import { AgentError, type BpfObject, frameLength, type Hex, ipLength, readU64s, send, syscalls, u32, UdpSink, useGuest, useVethPair } from '../../harness/index.js';

const guest = useGuest({
  suite: 'tracepoint',
  from: import.meta.url,
  sources: ['tp_syscall.bpf.c', 'tp_net.bpf.c'],
});

const NR_GETPPID_X86_64 = 110;

/** Field offsets of a tracepoint's record, from its format file in tracefs. */
async function formatOffsets(category: string, name: string): Promise<Record<string, number>> {
  const text = await guest.exec(
    `[ -d /sys/kernel/tracing/events ] || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true\n` +
      `for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do f=$d/events/${category}/${name}/format; [ -r $f ] && { cat $f; exit 0; }; done\n` +
      `echo "no format file for ${category}/${name}" >&2; exit 1`,
  );
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/field:[^;]*?(\w+)(?:\[\d*\])?;\s*offset:(\d+);/g)) out[m[1]] = Number(m[2]);
  return out;
}

async function agentPid(): Promise<number> {
  return (await syscalls(guest.agent, 'getppid', 0)).pid;
}

async function u64At(obj: BpfObject, map: string, slot: number): Promise<bigint> {
  return readU64s((await obj.map(map).lookup(u32(slot)))!)[0];
}

test('syscalls/sys_enter_getppid fires exactly once per getppid call of the agent, with __syscall_nr in the record', async () => {
  expect(await formatOffsets('syscalls', 'sys_enter_getppid')).toMatchObject({ common_pid: 4, __syscall_nr: 8 });
  const pid = await agentPid();
  const obj = await guest.load('tp_syscall.bpf.c');
  try {
    await obj.map('config').update(u32(0), u32(pid));
    const tp = await guest.attach({ type: 'tracepoint', obj, prog: 'count_getppid', category: 'syscalls', name: 'sys_enter_getppid' });
    const r = await syscalls(guest.agent, 'getppid', 123);
    expect(r.pid).toBe(pid);
    expect(await u64At(obj, 'counts', 0)).toBe(123n);
    expect(await u64At(obj, 'counts', 1)).toBe(BigInt(NR_GETPPID_X86_64));
    // Other system calls of the agent do not hit this tracepoint.
    await syscalls(guest.agent, 'getpid', 40);
    await syscalls(guest.agent, 'getppid', 7);
    expect(await u64At(obj, 'counts', 0)).toBe(130n);
    await tp.detach();
    await syscalls(guest.agent, 'getppid', 9);
    expect(await u64At(obj, 'counts', 0)).toBe(130n);
  } finally {
    await obj.unload();
  }
});

describe('net tracepoints on a veth pair', () => {
  const net = useVethPair(guest);

  const ifnameHex = (name: string): Hex => {
    const b = Buffer.alloc(16);
    b.write(name, 'latin1');
    return b.toString('hex');
  };

  /** by_len entries as {dir, len} -> {packets, bytes, rcSum}. */
  async function byLen(obj: BpfObject) {
    const out = new Map<string, { packets: bigint; bytes: bigint; rcSum: bigint }>();
    for (const e of await obj.map('by_len').dump()) {
      const k = Buffer.from(e.key, 'hex');
      const v = Buffer.from(e.value!, 'hex');
      out.set(`${k.readUInt32LE(0) === 0 ? 'xmit' : 'recv'}/${k.readUInt32LE(4)}`, {
        packets: v.readBigUInt64LE(0),
        bytes: v.readBigUInt64LE(8),
        rcSum: v.readBigInt64LE(16),
      });
    }
    return out;
  }

  test('net/net_dev_xmit and net/netif_receive_skb see each UDP datagram once, with its length, on the named veth ends', async () => {
    expect(await formatOffsets('net', 'net_dev_xmit')).toMatchObject({ skbaddr: 8, len: 16, rc: 20, name: 24 });
    expect(await formatOffsets('net', 'netif_receive_skb')).toMatchObject({ skbaddr: 8, len: 16, name: 20 });
    const obj = await guest.load('tp_net.bpf.c');
    try {
      await obj.map('config').update(u32(0), ifnameHex(net.a.ifname)); // xmit on A's end
      await obj.map('config').update(u32(1), ifnameHex(net.b.ifname)); // receive on B's end
      await guest.attach({ type: 'tracepoint', obj, prog: 'on_xmit', category: 'net', name: 'net_dev_xmit' });
      await guest.attach({ type: 'tracepoint', obj, prog: 'on_receive', category: 'net', name: 'netif_receive_skb' });

      const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 5001 });
      const plan = [
        { count: 13, size: 100 },
        { count: 7, size: 333 },
      ];
      for (const p of plan) {
        await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 5001, count: p.count, size: p.size });
      }
      const arrived = await sink.stats({ expect: 20 });
      await sink.close();
      expect(arrived.packets).toBe(20);

      // net_dev_xmit's len is the whole frame (Ethernet header included); by netif_receive_skb
      // the veth has pulled the Ethernet header, so len is the IP packet.
      const expected = new Map<string, { packets: bigint; bytes: bigint; rcSum: bigint }>();
      for (const p of plan) {
        const f = frameLength('udp', p.size);
        const i = ipLength('udp', p.size);
        expected.set(`xmit/${f}`, { packets: BigInt(p.count), bytes: BigInt(p.count * f), rcSum: 0n });
        expected.set(`recv/${i}`, { packets: BigInt(p.count), bytes: BigInt(p.count * i), rcSum: 0n });
      }
      expect(await byLen(obj)).toEqual(expected);
    } finally {
      await obj.unload();
    }
  });

  test('traffic on other interfaces is not counted: the name filter reads the record\'s __data_loc name', async () => {
    const obj = await guest.load('tp_net.bpf.c');
    try {
      // Only B's end, for both directions; A -> B traffic leaves through A's end, so only the
      // replies B sends count as xmit, and only what B receives counts as recv.
      await obj.map('config').update(u32(0), ifnameHex(net.b.ifname));
      await obj.map('config').update(u32(1), ifnameHex(net.b.ifname));
      await guest.attach({ type: 'tracepoint', obj, prog: 'on_xmit', category: 'net', name: 'net_dev_xmit' });
      await guest.attach({ type: 'tracepoint', obj, prog: 'on_receive', category: 'net', name: 'netif_receive_skb' });

      const N = 9;
      const r = await send(guest.agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: N, size: 56 });
      expect(r.replies).toBe(N);
      // Requests received on B's end, echo replies sent from it: the same sizes both ways.
      expect(await byLen(obj)).toEqual(
        new Map([
          [`xmit/${frameLength('icmp', 56)}`, { packets: BigInt(N), bytes: BigInt(N * frameLength('icmp', 56)), rcSum: 0n }],
          [`recv/${ipLength('icmp', 56)}`, { packets: BigInt(N), bytes: BigInt(N * ipLength('icmp', 56)), rcSum: 0n }],
        ]),
      );
    } finally {
      await obj.unload();
    }
  });
});

test('a tracepoint that does not exist fails to attach with a clear error', async () => {
  const obj = await guest.load('tp_syscall.bpf.c');
  try {
    const err = await guest.attach({ type: 'tracepoint', obj, prog: 'count_getppid', category: 'bh_nope', name: 'no_such_event' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgentError);
    const e = err as AgentError;
    expect(e.op).toBe('attach_tracepoint');
    expect(e.errno).toBe(2); // ENOENT: no events/bh_nope/no_such_event in tracefs
    expect(e.error).toContain('tracepoint bh_nope/no_such_event');
  } finally {
    await obj.unload();
  }
});
