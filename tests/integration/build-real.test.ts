// Opt-in: a real kernel source build (5-60 minutes on a few cores), too slow for `npm test`.
//   BPF_HARNESS_SOURCE_BUILD=1 npx vitest run tests/integration/build-real.test.ts
//   BPF_HARNESS_SOURCE_BUILD=1 BPF_HARNESS_SOURCE_KERNEL=4.19 npx vitest run tests/integration/build-real.test.ts
//   BPF_HARNESS_SOURCE_BUILD=1 BPF_HARNESS_SOURCE_KERNEL=/path/to/linux-4.14 npx vitest run tests/integration/build-real.test.ts
// Without the variable the tests are reported as skipped, with the reason in their name.
import { beforeAll, describe, expect, test } from 'vitest';
import { settings } from '../../harness/base/config.js';
import { atLeast, getKernel, type Kernel } from '../../harness/kernels/catalog.js';
import { Vm, VmError } from '../../harness/guest/vm.js';
import { hostMs } from '../helpers/timeouts.js';

const enabled = settings().sourceBuild;
const name = settings().sourceKernel;
const say = (m: string) => console.log(`[build] ${m}`);

describe.skipIf(!enabled)(`real source build of ${name} (opt-in: set BPF_HARNESS_SOURCE_BUILD=1)`, () => {
  let kernel: Kernel;
  // Every test needs the kernel, whichever of them runs (-t): a cache hit after the first build.
  beforeAll(async () => {
    kernel = await getKernel(name, { onProgress: say });
  }, 4 * 3600_000);

  test('builds (or reuses) the kernel; a second resolution is a cache hit within seconds', async () => {
    expect(kernel.modulesDir).toBeNull();
    const t1 = Date.now();
    const again = await getKernel(name);
    const cachedMs = Date.now() - t1;
    say(`cached resolution: ${(cachedMs / 1000).toFixed(1)} s`);
    expect(again.bzImage).toBe(kernel.bzImage);
    expect(cachedMs).toBeLessThan(hostMs(60_000));
  }, 4 * 3600_000);

  test('boots to SSH with everything the suites need built in', async () => {
    const vm = await Vm.start({ kernel, label: 'source-build' });
    try {
      say(`boot to SSH: ${(vm.bootMs / 1000).toFixed(1)} s (${vm.accel})`);
      expect((await vm.ssh.exec('uname -r')).trim()).toBe(kernel.release);
      const config = await vm.ssh.exec('zcat /proc/config.gz');
      for (const o of ['BPF_SYSCALL', 'CGROUP_BPF', 'NET_CLS_BPF', 'NET_SCH_INGRESS', 'VETH', 'KPROBE_EVENTS', 'VIRTIO_NET']) {
        expect(config, o).toMatch(new RegExp(`^CONFIG_${o}=y$`, 'm'));
      }
      expect(await vm.ssh.exec('grep -c " bpf " /proc/mounts')).toMatch(/^1/);
    } finally {
      await vm.stop();
    }
  }, hostMs(900_000));

  // 5.4 added jitter entropy ("random: try to actively add entropy rather than passively wait
  // for it"): older kernels under TCG have no entropy source of their own, which is what the
  // harness's seed is for.
  test('without the seed and virtio-rng, an old kernel\'s SSH server never answers, and the failure says why', async (ctx) => {
    if (atLeast(kernel.version, '5.4')) ctx.skip(`kernel ${kernel.release} has jitter entropy (5.4+): its pool initialises without help`);
    const t = Date.now();
    const err = await Vm.start({ kernel, label: 'no-entropy', entropy: { seed: false, rng: false } }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VmError);
    expect((err as VmError).bootCause).toBe('sshd-silent');
    expect((err as VmError).message).toMatch(/never said "random: crng init done", so its random pool is not initialised/);
    say(`no entropy: failed as sshd-silent after ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }, hostMs(300_000));

  test('with the seed alone (no virtio-rng device), the guest reaches SSH', async () => {
    const vm = await Vm.start({ kernel, label: 'seed-only', entropy: { rng: false } });
    try {
      say(`seed only: SSH after ${(vm.bootMs / 1000).toFixed(1)} s`);
      expect(vm.console.guestSays).toContainEqual(expect.stringMatching(/^entropy: credited 512 bits/));
      expect(vm.console.tail(400)).toMatch(/random: crng init done/);
    } finally {
      await vm.stop();
    }
  }, hostMs(300_000));
});
