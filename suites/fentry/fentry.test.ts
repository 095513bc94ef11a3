// fentry and fexit (5.5) on udp_sendmsg, compiled CO-RE against the guest kernel's BTF: the agent
// sends datagrams of known sizes from a socket bound to a known port; the programs read the
// socket's port and the length through BTF-typed arguments, and fexit sees each return value:
// the bytes sent, or -ENETUNREACH for a destination without a route. A sink counts what really
// arrived. Only the agent's calls on that socket are counted.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeEach, expect, test } from 'vitest';
import { atLeast, type BpfObject, EventReader, InetSocket, loadCore, requireFeature, syscalls, u32, UdpSink, useGuest } from '../../harness/index.js';

const guest = useGuest({ suite: 'fentry', from: import.meta.url });
const source = join(fileURLToPath(new URL('.', import.meta.url)), 'fentry_udp_sendmsg.bpf.c');
const ringbufSource = join(fileURLToPath(new URL('.', import.meta.url)), 'fentry_ringbuf.bpf.c');

const NETNS = 'bh-fentry';
const SINK = { addr: '10.77.0.1', port: 5000 };
const PORT = 7777; // the counted socket's port
const ENETUNREACH = 101;
// Slots of bh_stats (fentry_udp_sendmsg.bpf.c).
const S = { entryCalls: 0, entryLenSum: 1, exitCalls: 2, exitSentSum: 3, exitRetIsLen: 4, exitErrors: 5, exitLastError: 6 } as const;

let agentPid: number;
beforeEach(async () => {
  agentPid ??= (await syscalls(guest.agent, 'getpid', 0)).pid;
  await guest.ssh.exec(`ip netns add ${NETNS} && ip -n ${NETNS} link set lo up && ip -n ${NETNS} addr add ${SINK.addr}/32 dev lo`);
});

async function loadForAgent(src = source): Promise<BpfObject> {
  const obj = await loadCore(guest, src);
  const t = Buffer.alloc(8);
  t.writeUInt32LE(agentPid, 0);
  t.writeUInt32LE(PORT, 4);
  await obj.map('bh_target').update(u32(0), t.toString('hex'));
  return obj;
}

async function stats(obj: BpfObject): Promise<Record<keyof typeof S, bigint>> {
  const out = {} as Record<keyof typeof S, bigint>;
  for (const [k, slot] of Object.entries(S)) out[k as keyof typeof S] = Buffer.from((await obj.map('bh_stats').lookup(u32(slot)))!, 'hex').readBigInt64LE(0);
  return out;
}

const socket = (port: number) => InetSocket.open(guest.agent, { netns: NETNS, proto: 'udp', addr: SINK.addr, port });
const sendTo = (sock: InetSocket, bytes: number, count: number, dst = SINK.addr) => sock.send({ data: 'b'.repeat(bytes), count, dst, dport: SINK.port });

test('fentry sees each udp_sendmsg with its socket and length; fexit sees the bytes sent and the errno of a send without a route', async () => {
  const obj = await loadForAgent();
  expect(obj.program('on_entry')).toMatchObject({ type: 'tracing', section: 'fentry/udp_sendmsg' });
  await guest.attach({ type: 'tracing', obj, prog: 'on_entry' });
  await guest.attach({ type: 'tracing', obj, prog: 'on_exit' });
  const sink = await UdpSink.open(guest.agent, { netns: NETNS, addr: SINK.addr, port: SINK.port });
  const sock = await socket(PORT);

  await sendTo(sock, 100, 3);
  await sendTo(sock, 7, 2);
  expect(await sink.stats({ expect: 5, waitMs: 500 }), 'what the sink received').toMatchObject({ packets: 5, bytes: 314 });
  expect(await stats(obj), 'after 3 x 100 + 2 x 7 bytes').toEqual({
    entryCalls: 5n,
    entryLenSum: 314n,
    exitCalls: 5n,
    exitSentSum: 314n,
    exitRetIsLen: 5n,
    exitErrors: 0n,
    exitLastError: 0n,
  });

  // The namespace has no route to 192.0.2.1: udp_sendmsg returns -ENETUNREACH, and fexit sees it.
  await sendTo(sock, 50, 2, '192.0.2.1');
  expect(await stats(obj), 'after 2 sends without a route').toMatchObject({ entryCalls: 7n, entryLenSum: 414n, exitCalls: 7n, exitSentSum: 314n, exitErrors: 2n, exitLastError: BigInt(-ENETUNREACH) });

  // Another socket of the agent, on another port, is not counted (nor is anyone else's).
  await sendTo(await socket(PORT + 1), 64, 4);
  expect(await sink.stats({ expect: 4, waitMs: 500 })).toMatchObject({ packets: 4 });
  expect((await stats(obj)).entryCalls, 'after sends from port 7778').toBe(7n);
});

test('fentry and fexit detach on their own: each stops counting when its link goes', async () => {
  const obj = await loadForAgent();
  const entry = await guest.attach({ type: 'tracing', obj, prog: 'on_entry' });
  const exit = await guest.attach({ type: 'tracing', obj, prog: 'on_exit' });
  const sock = await socket(PORT);
  await sendTo(sock, 10, 4);
  expect(await stats(obj)).toMatchObject({ entryCalls: 4n, exitCalls: 4n });
  await entry.detach();
  await sendTo(sock, 10, 3);
  expect(await stats(obj), 'fentry detached').toMatchObject({ entryCalls: 4n, exitCalls: 7n, exitSentSum: 70n });
  await exit.detach();
  await sendTo(sock, 10, 2);
  expect(await stats(obj), 'both detached').toMatchObject({ entryCalls: 4n, exitCalls: 7n });
  // Attached again, fentry counts on from where its map stands. Before 5.13 (commit f3a95075549e,
  // "bpf: Allow trampoline re-attach for tracing and lsm programs") the kernel forgot a tracing
  // program's target once its first link went, and refuses a second attach with ENOENT.
  const again = guest.attach({ type: 'tracing', obj, prog: 'on_entry' });
  if (atLeast(guest.kernel.version, '5.13')) {
    await again;
    await sendTo(sock, 10, 1);
    expect(await stats(obj), 'fentry attached again').toMatchObject({ entryCalls: 5n, entryLenSum: 50n, exitCalls: 7n });
  } else {
    await expect(again, 'a second attach before 5.13').rejects.toMatchObject({ op: 'attach_prog', errno: 2 });
    await sendTo(sock, 10, 1);
    expect(await stats(obj), 'fentry not attached again').toMatchObject({ entryCalls: 4n, exitCalls: 7n });
  }
});

test('fexit reports each call through a BPF ring buffer, in order: the length asked for and what udp_sendmsg returned', async (ctx) => {
  await requireFeature(ctx, guest, { feature: 'BPF ring buffer', since: '5.8', mapType: 'ringbuf' });
  const obj = await loadForAgent(ringbufSource);
  await guest.attach({ type: 'tracing', obj, prog: 'report_exit' });
  const sock = await socket(PORT);
  await sendTo(sock, 100, 2);
  await sendTo(sock, 30, 1, '192.0.2.1'); // no route: -ENETUNREACH
  await sendTo(sock, 7, 3);
  await sendTo(await socket(PORT + 1), 64, 4); // another port: not reported
  const ring = EventReader.of(obj, 'bh_events'); // a ring buffer: opened by its first read
  const { records } = await ring.read({ expect: 6 });
  const events = records.map((r) => {
    const b = Buffer.from(r.data, 'hex');
    return { len: b.readBigUInt64LE(0), ret: b.readInt32LE(8), port: b.readUInt32LE(12) };
  });
  expect(events, 'ring buffer records').toEqual([
    { len: 100n, ret: 100, port: PORT },
    { len: 100n, ret: 100, port: PORT },
    { len: 30n, ret: -ENETUNREACH, port: PORT },
    { len: 7n, ret: 7, port: PORT },
    { len: 7n, ret: 7, port: PORT },
    { len: 7n, ret: 7, port: PORT },
  ]);
  expect((await ring.read({ waitMs: 100 })).records, 'a second read').toEqual([]);
});
