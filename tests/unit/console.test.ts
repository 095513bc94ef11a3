import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { ConsoleLog, parseAllowlist, scanLine } from '../../harness/guest/console.js';

test.each([
  ['[    2.345] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)', 'panic'],
  ['[   10.1] Oops: 0000 [#1] SMP NOPTI', 'oops'],
  ['[   10.1] BUG: kernel NULL pointer dereference, address: 0000000000000000', 'bug'],
  ['[   30.0] rcu: INFO: rcu_preempt self-detected stall on CPU', 'rcu-stall'],
  ['[   22.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [swapper/0:1]', 'soft-lockup'],
  ['[  120.0] INFO: task kworker/0:1:12 blocked for more than 120 seconds.', 'hung-task'],
  ['[   12.3] WARNING: CPU: 1 PID: 345 at net/core/filter.c:8234 bpf_warn_invalid_xdp_action+0x51/0x60', 'warning'],
  ['[   12.3] WARNING: at kernel/bpf/core.c:100 f+0x1/0x2', 'warning'],
  ['[   12.3] BUG: KASAN: slab-out-of-bounds in bpf_skb_load_bytes+0x1c/0x80', 'kasan'],
  ['[   12.3] UBSAN: array-index-out-of-bounds in kernel/bpf/verifier.c:1234:5', 'ubsan'],
  ['[   12.3] UBSAN: Undefined behaviour in net/core/filter.c:300:12', 'ubsan'],
  ['[   12.3] WARNING: possible circular locking dependency detected', 'lockdep'],
  ['[   12.3] WARNING: suspicious RCU usage', 'lockdep'],
  ['[   12.3] NMI watchdog: Watchdog detected hard LOCKUP on cpu 1', 'hard-lockup'],
])('scanLine recognises %s', (line, kind) => {
  expect(scanLine(line)).toBe(kind);
});

test('ordinary boot lines are not faults', () => {
  for (const line of ['[    0.000000] Linux version 6.1.0-50-cloud-amd64', 'bpf-harness: starting sshd', '[    1.2] Run /init as init process']) {
    expect(scanLine(line)).toBeNull();
  }
});

test('ConsoleLog writes everything to its file, keeps a tail and records every fault with the lines after it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'console-'));
  const log = new ConsoleLog(join(dir, 'console.log'));
  const faults: string[] = [];
  log.onFault((k) => faults.push(k));
  log.write('line one\nline t');
  log.write('wo\n[ 1.0] Kernel panic - not syncing: Attempted to kill init!\n[ 1.0] CPU: 0 PID: 1 Comm: init\n');
  log.write('[ 1.1] Kernel panic - not syncing: again\nlast');
  await log.close();
  expect(faults).toEqual(['panic', 'panic']);
  expect(log.fault?.line).toContain('Attempted to kill init');
  expect(log.faults.map((f) => f.line)).toEqual(['[ 1.0] Kernel panic - not syncing: Attempted to kill init!', '[ 1.1] Kernel panic - not syncing: again']);
  expect(log.faults[0].report).toEqual(['[ 1.0] Kernel panic - not syncing: Attempted to kill init!', '[ 1.0] CPU: 0 PID: 1 Comm: init', '[ 1.1] Kernel panic - not syncing: again', 'last']);
  expect(log.faults[1].report).toEqual(['[ 1.1] Kernel panic - not syncing: again', 'last']);
  expect(log.tail(2)).toBe('[ 1.1] Kernel panic - not syncing: again\nlast');
  expect(await readFile(join(dir, 'console.log'), 'utf8')).toContain('line two\n');
});

test("ConsoleLog keeps what the image's init says, in order", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'console-'));
  const log = new ConsoleLog(join(dir, 'console.log'));
  log.write('[ 1.0] Run /init as init process\nbpf-harness: insmod veth.ko failed: x\nbpf-har');
  log.write('ness: starting sshd\n');
  expect(log.guestSays).toEqual(['insmod veth.ko failed: x', 'starting sshd']);
  // A kernel message that lands before init's newline (modules load while init talks), as seen.
  log.write('bpf-harness: ready for ssh[    1.902900] GACT probability on\n\n');
  expect(log.guestSays).toEqual(['insmod veth.ko failed: x', 'starting sshd', 'ready for ssh']);
  expect(log.saidAt.has('ready for ssh')).toBe(true);
  // Through /dev/kmsg, as the image's init says things: a kernel record, never cut.
  log.write('[    2.000001] bpf-harness: entropy: credited 512 bits\n');
  expect(log.guestSays.at(-1)).toBe('entropy: credited 512 bits');
  await log.close();
});

test('an allowlisted line is not a fault, and is kept with its rule', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'console-'));
  const rules = parseAllowlist('# comment\nWARNING: CPU: \\d+ PID: \\d+ at arch/x86/kernel/fpu/xstate\\.c ## TCG\'s -cpu max offers an xstate feature the kernel does not expect\n', 'test.txt');
  const log = new ConsoleLog(join(dir, 'console.log'), rules);
  log.write('[ 0.1] WARNING: CPU: 0 PID: 0 at arch/x86/kernel/fpu/xstate.c:800 fpu__init+0x1/0x2\n[ 5.0] WARNING: CPU: 1 PID: 9 at net/core/dev.c:1 f+0x1/0x2\n');
  await log.close();
  expect(log.faults.map((f) => f.line)).toEqual(['[ 5.0] WARNING: CPU: 1 PID: 9 at net/core/dev.c:1 f+0x1/0x2']);
  expect(log.allowed).toHaveLength(1);
  expect(log.allowed[0].rule.origin).toBe('test.txt:2');
});

test('an allowlist rule needs a reason and a valid pattern, and says where it stands when it has not', () => {
  expect(() => parseAllowlist('WARNING: foo\n', 'k.txt')).toThrow(/k\.txt:1: an allowlist rule is "REGEX ## REASON"/);
  expect(() => parseAllowlist('WARNING: (foo ## reason\n', 'k.txt')).toThrow(/k\.txt:1: not a regular expression/);
  expect(parseAllowlist('\n# only comments\n', 'k.txt')).toEqual([]);
});

test('the repository\'s allowlist files parse', async () => {
  const { loadAllowlist } = await import('../../harness/guest/allowlist.js');
  for (const k of ['6.1', '5.10', '6.12', 'sid']) expect(() => loadAllowlist(k)).not.toThrow();
});

test('waitForLine resolves when the line arrives, and false after the deadline', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'console-'));
  const log = new ConsoleLog(join(dir, 'console.log'));
  const seen = log.waitForLine((l) => l.includes('mark-1'), 5_000);
  log.write('[ 1.0] bpf-harness-sync mark-1\n');
  expect(await seen).toBe(true);
  expect(await log.waitForLine((l) => l.includes('never'), 50)).toBe(false);
  await log.close();
});
