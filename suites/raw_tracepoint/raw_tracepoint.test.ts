// Raw tracepoints (4.17) on sys_enter/sys_exit, attached by name (BPF_RAW_TRACEPOINT_OPEN): the
// agent makes an exact number of system calls, the programs count only the agent's own (its tgid
// is written into a config map first), per system call number, and see each call's return value.
// Then tp_btf (5.5): the same tracepoints with typed arguments, compiled CO-RE against the guest
// kernel's vmlinux.h. Return values are checked against /proc, not against the agent's answer.
import { join } from 'node:path';
import { beforeEach, expect, test } from 'vitest';
import { fileURLToPath } from 'node:url';
import { AgentError, type BpfObject, EventReader, type Hex, loadCore, readU64s, requireFeature, syscalls, u32, useGuest } from '../../harness/index.js';

const guest = useGuest({
  suite: 'raw_tracepoint',
  from: import.meta.url,
  sources: ['raw_tp_syscalls.bpf.c'],
});
const here = (f: string) => join(fileURLToPath(new URL('.', import.meta.url)), f);

// x86_64 system call numbers.
const NR = { getppid: 110, sched_yield: 24, getuid: 102 } as const;

let agentPid: number;
let agentPpid: number;
beforeEach(async () => {
  agentPid ??= (await syscalls(guest.agent, 'getpid', 0)).pid;
  // The agent's parent, as the kernel's /proc says (field 4 of stat).
  agentPpid ??= Number((await guest.ssh.exec(`cat /proc/${agentPid}/stat`)).replace(/^.*\) /s, '').split(' ')[1]);
});

const s64 = (hex: Hex, at = 0) => Buffer.from(hex, 'hex').readBigInt64LE(at);

async function loadForAgent(): Promise<BpfObject> {
  const obj = await guest.load('raw_tp_syscalls.bpf.c');
  await obj.map('config').update(u32(0), u32(agentPid));
  return obj;
}

async function entries(obj: BpfObject, nr: number): Promise<bigint> {
  const v = await obj.map('entries').lookup(u32(nr));
  return v ? readU64s(v)[0] : 0n;
}

async function exits(obj: BpfObject, nr: number): Promise<{ calls: bigint; retSum: bigint; lastRet: bigint } | null> {
  const v = await obj.map('exits').lookup(u32(nr));
  return v ? { calls: readU64s(v)[0], retSum: s64(v, 8), lastRet: s64(v, 16) } : null;
}

const calls = (name: 'getppid' | 'sched_yield' | 'getuid', count: number) => syscalls(guest.agent, name, count);

test('a raw sys_enter tracepoint counts exactly the system calls the agent makes, per system call number', async () => {
  const obj = await loadForAgent();
  await guest.attach({ type: 'raw_tracepoint', obj, prog: 'count_enter', name: 'sys_enter' });
  // Attached by BPF_RAW_TRACEPOINT_OPEN: no perf event, so nothing in tracefs is enabled for it.
  expect((await guest.ssh.exec('cat /sys/kernel/tracing/events/raw_syscalls/sys_enter/enable')).trim()).toBe('0');
  expect(await entries(obj, NR.getppid), 'getppid before').toBe(0n);
  await calls('getppid', 37);
  expect(await entries(obj, NR.getppid), 'getppid after 37').toBe(37n);
  await calls('sched_yield', 250);
  expect(await entries(obj, NR.sched_yield), 'sched_yield after 250').toBe(250n);
  await calls('getppid', 5);
  expect(await entries(obj, NR.getppid), 'getppid after 42').toBe(42n);
  expect(await entries(obj, NR.getuid), 'getuid, never called').toBe(0n);
});

test('a raw sys_exit tracepoint sees every return value: getppid returns the agent\'s parent as /proc tells it', async () => {
  const obj = await loadForAgent();
  await guest.attach({ type: 'raw_tracepoint', obj, prog: 'count_exit', name: 'sys_exit' });
  await calls('getppid', 20);
  expect(await exits(obj, NR.getppid)).toEqual({ calls: 20n, retSum: 20n * BigInt(agentPpid), lastRet: BigInt(agentPpid) });
  await calls('getuid', 3); // the agent runs as root
  expect(await exits(obj, NR.getuid)).toEqual({ calls: 3n, retSum: 0n, lastRet: 0n });
});

test('after detach the raw tracepoint no longer fires; attached again it counts on; an unknown tracepoint is refused', async () => {
  const obj = await loadForAgent();
  const a = await guest.attach({ type: 'raw_tracepoint', obj, prog: 'count_enter', name: 'sys_enter' });
  await calls('getppid', 10);
  await a.detach();
  await calls('getppid', 25);
  expect(await entries(obj, NR.getppid), 'after detach').toBe(10n);
  const again = await guest.attach({ type: 'raw_tracepoint', obj, prog: 'count_enter', name: 'sys_enter' });
  await calls('getppid', 5);
  expect(await entries(obj, NR.getppid), 'attached again').toBe(15n);
  await again.detach();

  const err = await guest.attach({ type: 'raw_tracepoint', obj, prog: 'count_enter', name: 'bh_no_such_tracepoint' }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentError);
  expect((err as AgentError).errno, 'errno of BPF_RAW_TRACEPOINT_OPEN').toBe(2); // ENOENT
  expect((err as AgentError).error).toContain('raw tracepoint bh_no_such_tracepoint');
});

test('a raw tracepoint reports each getppid and getuid of the agent through a perf event array, in the order made', async () => {
  const obj = await loadForAgent();
  const perf = await EventReader.open(obj, 'events'); // a perf event array: open before the program writes to it
  await guest.attach({ type: 'raw_tracepoint', obj, prog: 'report_enter', name: 'sys_enter' });
  await calls('getppid', 5);
  await calls('getuid', 3);
  await calls('getppid', 2);
  const { records, lost } = await perf.read({ expect: 10 });
  expect(lost, 'records the perf buffer lost').toBe(0);
  const events = records
    .map((r) => Buffer.from(r.data, 'hex'))
    .map((b) => ({ seq: b.readBigUInt64LE(0), tgid: b.readUInt32LE(8), nr: b.readUInt32LE(12) }))
    .sort((x, y) => Number(x.seq - y.seq));
  expect(events, 'records, by sequence number').toEqual(
    [...Array(5).fill(NR.getppid), ...Array(3).fill(NR.getuid), ...Array(2).fill(NR.getppid)].map((nr, i) => ({ seq: BigInt(i), tgid: agentPid, nr })),
  );
  // Nothing more: a read with nothing new returns no record.
  expect((await perf.read({ waitMs: 100 })).records).toEqual([]);
});

test('tp_btf (CO-RE against the guest\'s BTF) reads typed arguments: regs->orig_ax is the id on entry, and the return value on exit', async (ctx) => {
  await requireFeature(ctx, guest, { feature: 'tp_btf (BTF-typed raw tracepoints)', since: '5.5', progType: 'tracing', btf: true, config: ['CONFIG_DEBUG_INFO_BTF'] });
  const obj = await loadCore(guest, here('tp_btf_syscalls.bpf.c'));
  expect(obj.program('typed_enter')).toMatchObject({ type: 'tracing', section: 'tp_btf/sys_enter' });
  const config = Buffer.alloc(8);
  config.writeUInt32LE(agentPid, 0);
  config.writeUInt32LE(NR.getppid, 4);
  await obj.map('bh_config').update(u32(0), config.toString('hex'));
  await guest.attach({ type: 'tracing', obj, prog: 'typed_enter' });
  await guest.attach({ type: 'tracing', obj, prog: 'typed_exit' });

  await calls('getppid', 33);
  await calls('sched_yield', 10); // another number: not counted
  const stat = async (slot: number) => s64((await obj.map('stats').lookup(u32(slot)))!);
  const [ENTRIES, ORIG_AX_MATCHES, EXITS, RET_SUM, LAST_RET] = [0, 1, 2, 3, 4];
  expect(await stat(ENTRIES), 'entries').toBe(33n);
  expect(await stat(ORIG_AX_MATCHES), 'entries whose regs->orig_ax was the id').toBe(33n);
  expect(await stat(EXITS), 'exits').toBe(33n);
  expect(await stat(RET_SUM), 'sum of return values').toBe(33n * BigInt(agentPpid));
  expect(await stat(LAST_RET), 'last return value').toBe(BigInt(agentPpid));
});
