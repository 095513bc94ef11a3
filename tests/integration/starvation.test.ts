// A kernel that really stalls, on a host that runs its guest and on one that starves it (opt-in:
// BPF_HARNESS_STARVATION_TEST=1; about 3 minutes). A module spins with preemption off for 30 s by the clock:
// the kernel reports an RCU stall and a soft lockup. With the guest's vCPUs given the host, those
// are kernel faults that carry what the host gave them; with QEMU held to a tenth of a core over
// the spin (a cpu cgroup quota), they are excused as the host's doing, with the figures, and the
// guest is not killed for them.
import { cp, mkdtemp } from 'node:fs/promises';
import { existsSync, mkdirSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { settings } from '../../harness/base/config.js';
import { getKernel } from '../../harness/kernels/catalog.js';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { Vm } from '../../harness/guest/vm.js';
import { defaultKernel } from '../helpers/kernel.js';
import { hostMs } from '../helpers/timeouts.js';

const CPU_CGROUP = '/sys/fs/cgroup/cpu';
const enabled = settings().starvationTest;

async function spinIn(starve: boolean): Promise<Vm> {
  const release = (await getKernel()).release;
  const dir = await mkdtemp(join(tmpdir(), 'bh-spin-'));
  await cp(join(REPO_ROOT, 'tests/fixtures/guest/spin-module'), dir, { recursive: true });
  await execa('make', ['-C', `/usr/src/linux-headers-${release}`, `M=${dir}`, 'modules']);
  const vm = await Vm.start({ kernel: await defaultKernel(), label: starve ? 'starved-spin' : 'spin' });
  await vm.ssh.put(dir, ['bh_spin.ko'], '/tmp');
  const cg = join(CPU_CGROUP, `bpf-harness-starve-${process.pid}`);
  const move = (to: string) => {
    for (const t of readdirSync(`/proc/${vm.pid}/task`)) writeFileSync(join(to, 'tasks'), t);
  };
  if (starve) {
    mkdirSync(cg);
    writeFileSync(join(cg, 'cpu.cfs_period_us'), '100000');
    writeFileSync(join(cg, 'cpu.cfs_quota_us'), '10000');
    move(cg);
  }
  try {
    // In the background: the spin's 30 s and the kernel's reports pass while the host time does
    // (starved, the guest's SSH server may answer nothing meanwhile).
    await vm.ssh.exec('insmod /tmp/bh_spin.ko secs=30 </dev/null >/dev/null 2>&1 &');
    await new Promise((r) => setTimeout(r, 50_000));
  } finally {
    if (starve) {
      move(CPU_CGROUP);
      rmdirSync(cg);
    }
  }
  // The spin has ended; the console has its reports once the guest answers again.
  await vm.syncConsole('true', hostMs(60_000));
  return vm;
}

test.skipIf(!enabled)('a real stall on a host that ran the guest is a kernel fault, with what the host gave its vCPUs', async (ctx) => {
  if (!existsSync(`/usr/src/linux-headers-${(await getKernel()).release}`)) ctx.skip('needs the default kernel\'s headers (scripts/setup.sh installs them)');
  const vm = await spinIn(false);
  try {
    const kinds = vm.console.faults.map((f) => f.kind);
    expect(kinds, vm.console.tail(40)).toContain('rcu-stall');
    for (const f of vm.console.faults.filter((f) => f.kind === 'rcu-stall' || f.kind === 'soft-lockup')) {
      expect(f.host).toMatch(/^the host ran the guest: in the [\d.]+ s before it, the guest's 2 vCPU threads ran [\d.]+ s and waited [\d.]+ s for a host CPU \(CPU 0\/TCG ran/);
    }
    expect(vm.console.excused).toEqual([]);
  } finally {
    vm.kill();
    await vm.stop();
  }
}, hostMs(240_000));

test.skipIf(!enabled || !existsSync(join(CPU_CGROUP, 'cpu.cfs_quota_us')))('the same stall on a host that starved the guest is excused as the host\'s doing, with the figures', async (ctx) => {
  if (!existsSync(`/usr/src/linux-headers-${(await getKernel()).release}`)) ctx.skip('needs the default kernel\'s headers (scripts/setup.sh installs them)');
  const vm = await spinIn(true);
  try {
    expect(vm.console.faults.filter((f) => f.kind === 'rcu-stall' || f.kind === 'soft-lockup'), vm.console.tail(40)).toEqual([]);
    expect(vm.console.excused.map((x) => x.kind)).toContain('rcu-stall');
    for (const x of vm.console.excused) expect(x.reason).toMatch(/^the host starved the guest: in the [\d.]+ s before it, the guest's 2 vCPU threads ran [\d.]+ s and waited [\d.]+ s for a host CPU/);
  } finally {
    vm.kill();
    await vm.stop();
  }
}, hostMs(300_000));
