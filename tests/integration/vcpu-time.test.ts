// A starved guest is not a kernel fault (harness/guest/vcpu-time.ts, harness/guest/console.ts): the judgement
// from the vCPU threads' run and wait time, the windows the kernel's reports name, and a stall
// line that the console records as excused, not as a fault, when the host starved the guest.
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { ConsoleLog } from '../../harness/guest/console.js';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { judge, silenceCause, stuckWindowMs, vcpuState, VcpuMonitor } from '../../harness/guest/vcpu-time.js';

const sample = (at: number, t: [number, number][]) => ({
  at,
  threads: new Map(t.map(([run, wait], i) => [100 + i, { name: `CPU ${i}/TCG`, runNs: run * 1e6, waitNs: wait * 1e6 }])),
});

test('the judgement: starved when the vCPUs waited for a host CPU at least as long as they ran, with the figures', () => {
  const starved = judge(sample(0, [[0, 0], [0, 0]]), sample(21_000, [[4_000, 17_000], [6_000, 15_000]]), '4.20 3.90 2.00');
  expect(starved.starved).toBe(true);
  expect(starved.runMs).toBe(10_000);
  expect(starved.waitMs).toBe(32_000);
  expect(starved.text).toMatch(/in the 21\.0 s before it, the guest's 2 vCPU threads ran 10\.0 s and waited 32\.0 s for a host CPU \(CPU 0\/TCG ran 4\.0 s, waited 17\.0 s; CPU 1\/TCG ran 6\.0 s, waited 15\.0 s\); host load average 4\.20 3\.90 2\.00/);
  const fed = judge(sample(0, [[1_000, 500]]), sample(21_000, [[21_000, 1_500]]), '1.00 1.00 1.00');
  expect(fed.starved).toBe(false);
  expect(fed.runMs).toBe(20_000);
  expect(fed.waitMs).toBe(1_000);
});

test('the window is the time the kernel says it was stuck', () => {
  expect(stuckWindowMs('watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [swapper/0:1]')).toBe(23_000);
  expect(stuckWindowMs('INFO: task kworker/0:1:12 blocked for more than 120 seconds.')).toBe(120_000);
  expect(stuckWindowMs('rcu: INFO: rcu_sched self-detected stall on CPU')).toBe(21_000);
  expect(stuckWindowMs('NMI watchdog: Watchdog detected hard LOCKUP on cpu 1')).toBe(10_000);
});

test('a stall judged as starvation is excused with its figures; judged as not, it is a fault that carries them; other faults are not judged', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'excuse-'));
  const log = new ConsoleLog(join(dir, 'console.log'));
  const judged: string[] = [];
  let starved = true;
  log.excuse = (kind) => (judged.push(kind), { starved, text: 'figures' });
  log.write('[   30.0] rcu: INFO: rcu_sched self-detected stall on CPU\n');
  expect(log.faults).toEqual([]);
  expect(log.excused).toEqual([{ kind: 'rcu-stall', line: '[   30.0] rcu: INFO: rcu_sched self-detected stall on CPU', reason: 'the host starved the guest: figures' }]);
  starved = false;
  log.write('[   52.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [swapper/0:1]\n');
  expect(log.faults.map((f) => [f.kind, f.host])).toEqual([['soft-lockup', 'the host ran the guest: figures']]);
  log.write('[   60.0] Kernel panic - not syncing: sysrq triggered crash\n');
  expect(log.faults.map((f) => f.kind)).toEqual(['soft-lockup', 'panic']);
  expect(judged).toEqual(['rcu-stall', 'soft-lockup']);
  await log.close();
});

// Root and the cpu controller: the threads are held to a quarter of a core, as a loaded host would.
const cpuCgroup = '/sys/fs/cgroup/cpu';
test.skipIf(process.getuid?.() !== 0 || !existsSync(join(cpuCgroup, 'cpu.cfs_quota_us')))(
  'vCPU threads held to a quarter of a core are judged starved from what /proc says of them',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vcpu-'));
    // The binary's name is what findQemu looks for.
    const bin = join(dir, 'qemu-system-fake');
    await execa('cc', ['-O1', '-pthread', '-o', bin, join(REPO_ROOT, 'tests/fixtures/vcpu/spin.c')]);
    const cg = join(cpuCgroup, `bpf-harness-vcpu-${process.pid}`);
    mkdirSync(cg);
    writeFileSync(join(cg, 'cpu.cfs_period_us'), '100000');
    writeFileSync(join(cg, 'cpu.cfs_quota_us'), '25000');
    const child = execa(bin, ['2'], { reject: false, buffer: false, stdout: 'pipe' });
    try {
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      writeFileSync(join(cg, 'tasks'), '');
      for (const tid of (await execa('ls', [`/proc/${child.pid}/task`])).stdout.split('\n')) writeFileSync(join(cg, 'tasks'), tid);
      const monitor = new VcpuMonitor(child.pid!);
      await new Promise((r) => setTimeout(r, 3_000));
      const s = monitor.starvation(3_000)!;
      monitor.stop();
      expect(s.perVcpu.map((v) => v.name)).toEqual(['CPU 0/TCG', 'CPU 1/TCG']);
      // Two spinning threads on a quarter core: they wait at least seven times as long as they run.
      expect(s.starved, s.text).toBe(true);
      expect(s.waitMs, s.text).toBeGreaterThan(3 * s.runMs);
      expect(s.runMs, s.text).toBeGreaterThan(0);
    } finally {
      child.kill('SIGKILL');
      await child;
      rmdirSync(cg);
    }
  },
);

test('a silent guest\'s vCPUs: halted when they neither ran nor waited, starved when they waited as long as they ran, running otherwise', () => {
  const idle = judge(sample(0, [[0, 0], [0, 0]]), sample(60_000, [[1_200, 300], [900, 100]]), '2.00 2.00 2.00', 'of the silence');
  expect(vcpuState(idle)).toBe('idle');
  expect(silenceCause(idle)).toMatch(/^the guest was not starved: its vCPUs were halted, so the kernel was waiting for an interrupt or a timer that did not come \(in the 60\.0 s of the silence, the guest's 2 vCPU threads ran 2\.1 s and waited 0\.4 s/);
  const starved = judge(sample(0, [[0, 0], [0, 0]]), sample(60_000, [[20_000, 30_000], [10_000, 25_000]]), '6.00 5.00 4.00');
  expect(vcpuState(starved)).toBe('starved');
  expect(silenceCause(starved)).toMatch(/^the host starved the guest, so this says nothing of the kernel \(/);
  const spinning = judge(sample(0, [[0, 0], [0, 0]]), sample(60_000, [[58_000, 1_000], [3_000, 200]]), '1.00 1.00 1.00');
  expect(vcpuState(spinning)).toBe('running');
  expect(silenceCause(spinning)).toMatch(/^the guest was not starved: its vCPUs were running, so the kernel was busy or spinning without printing \(/);
});
