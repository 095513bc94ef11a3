import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { ConsoleLog, scanLine } from '../harness/console.js';

test.each([
  ['[    2.345] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)', 'panic'],
  ['[   10.1] Oops: 0000 [#1] SMP NOPTI', 'oops'],
  ['[   10.1] BUG: kernel NULL pointer dereference, address: 0000000000000000', 'bug'],
  ['[   30.0] rcu: INFO: rcu_preempt self-detected stall on CPU', 'rcu-stall'],
  ['[   22.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [swapper/0:1]', 'soft-lockup'],
  ['[  120.0] INFO: task kworker/0:1:12 blocked for more than 120 seconds.', 'hung-task'],
])('scanLine recognises %s', (line, kind) => {
  expect(scanLine(line)).toBe(kind);
});

test('ordinary boot lines are not faults', () => {
  for (const line of ['[    0.000000] Linux version 6.1.0-50-cloud-amd64', 'bpf-harness: starting sshd', '[    1.2] Run /init as init process']) {
    expect(scanLine(line)).toBeNull();
  }
});

test('ConsoleLog writes everything to its file, keeps a tail and reports the first fault once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'console-'));
  const log = new ConsoleLog(join(dir, 'console.log'));
  const faults: string[] = [];
  log.onFault((k) => faults.push(k));
  log.write('line one\nline t');
  log.write('wo\n[ 1.0] Kernel panic - not syncing: Attempted to kill init!\n');
  log.write('[ 1.1] Kernel panic - not syncing: again\nlast');
  await log.close();
  expect(faults).toEqual(['panic']);
  expect(log.fault?.line).toContain('Attempted to kill init');
  expect(log.tail(2)).toBe('[ 1.1] Kernel panic - not syncing: again\nlast');
  expect(await readFile(join(dir, 'console.log'), 'utf8')).toContain('line two\n');
});

test("ConsoleLog keeps what the image's init says, in order", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'console-'));
  const log = new ConsoleLog(join(dir, 'console.log'));
  log.write('[ 1.0] Run /init as init process\nbpf-harness: insmod veth.ko failed: x\nbpf-har');
  log.write('ness: starting sshd\n');
  expect(log.guestSays).toEqual(['insmod veth.ko failed: x', 'starting sshd']);
  await log.close();
});
