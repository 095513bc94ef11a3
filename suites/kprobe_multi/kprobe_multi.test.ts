// kprobe_multi (5.18): one link on several system calls' kernel entry functions. The agent gives
// the i-th function BPF cookie i + 1, makes an exact number of calls of each, and the program
// counts per cookie, for the agent's tgid only; the return probe also sums the return values
// (getppid's is the agent's parent as /proc gives it). Debian's 6.1 is built without fprobe: its
// tests skip with "kernel config lacks CONFIG_FPROBE".
import { beforeEach, expect, test } from 'vitest';
import { AgentError, type BpfObject, readU64s, syscalls, type SyscallName, syscallSymbol, u32, useGuest } from '../../harness/index.js';

const guest = useGuest({ suite: 'kprobe_multi', from: import.meta.url, sources: ['kprobe_multi_count.bpf.c'] });

// The functions, in cookie order (cookie = index + 1), and how often the agent calls each.
const CALLS: [SyscallName, number][] = [
  ['getppid', 3],
  ['getuid', 5],
  ['getgid', 7],
  ['sched_yield', 11],
];

let syms: string[];
let agentPid: number;
let agentPpid: number;
beforeEach(async () => {
  syms ??= await Promise.all(CALLS.map(([name]) => syscallSymbol(guest.ssh, name)));
  agentPid ??= (await syscalls(guest.agent, 'getpid', 0)).pid;
  agentPpid ??= Number((await guest.ssh.exec(`cat /proc/${agentPid}/stat`)).replace(/^.*\) /s, '').split(' ')[1]);
});

async function loadForAgent(): Promise<BpfObject> {
  const obj = await guest.load('kprobe_multi_count.bpf.c');
  await obj.map('config').update(u32(0), u32(agentPid));
  return obj;
}

/** Per cookie 1..n: hits and the sum of return values. */
async function perFunction(obj: BpfObject, map: 'entries' | 'returns') {
  const out: { hits: bigint; retSum: bigint }[] = [];
  for (let cookie = 1; cookie <= CALLS.length; cookie++) {
    const v = Buffer.from((await obj.map(map).lookup(u32(cookie)))!, 'hex');
    out.push({ hits: readU64s(v.toString('hex'))[0], retSum: v.readBigInt64LE(8) });
  }
  return out;
}

async function makeCalls(times = 1): Promise<void> {
  for (let i = 0; i < times; i++) for (const [name, n] of CALLS) await syscalls(guest.agent, name, n);
}

test('one kprobe.multi link counts exactly the calls of each of four functions, told apart by their cookies', async () => {
  const obj = await loadForAgent();
  const link = await guest.attach({ type: 'kprobe_multi', obj, prog: 'count_entry', syms });
  await makeCalls(2);
  expect((await perFunction(obj, 'entries')).map((s) => s.hits), `hits per function (${syms.join(', ')})`).toEqual(CALLS.map(([, n]) => BigInt(2 * n)));
  // Cookie 0 (no function) stays empty: every hit had its function's cookie.
  expect(readU64s((await obj.map('entries').lookup(u32(0)))!)[0]).toBe(0n);
  await link.detach();
  await makeCalls();
  expect((await perFunction(obj, 'entries')).map((s) => s.hits), 'after detach').toEqual(CALLS.map(([, n]) => BigInt(2 * n)));
});

test('kretprobe.multi sees each function return: getppid the agent\'s parent, getuid and getgid 0, sched_yield 0', async () => {
  const obj = await loadForAgent();
  await guest.attach({ type: 'kprobe_multi', obj, prog: 'count_return', syms, retprobe: true });
  await makeCalls();
  const ret = await perFunction(obj, 'returns');
  expect(ret, 'returns per function').toEqual([
    { hits: 3n, retSum: 3n * BigInt(agentPpid) },
    { hits: 5n, retSum: 0n },
    { hits: 7n, retSum: 0n },
    { hits: 11n, retSum: 0n },
  ]);
});

test('a list with a function that does not exist is refused as a whole, and nothing is attached', async () => {
  const obj = await loadForAgent();
  const err = await guest.attach({ type: 'kprobe_multi', obj, prog: 'count_entry', syms: [...syms, 'bh_no_such_function'] }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentError);
  // The kernel's errno: ftrace_lookup_symbols finds not all of them (ESRCH).
  expect((err as AgentError).errno, (err as AgentError).message).toBe(3);
  await makeCalls();
  expect((await perFunction(obj, 'entries')).map((s) => s.hits)).toEqual([0n, 0n, 0n, 0n]);
});
