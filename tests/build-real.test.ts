// Opt-in: a real kernel source build (15-60 minutes on a few cores), too slow for `npm test`.
//   BPF_HARNESS_SOURCE_BUILD=1 npx vitest run tests/build-real.test.ts
//   BPF_HARNESS_SOURCE_BUILD=1 BPF_HARNESS_SOURCE_KERNEL=4.19 npx vitest run tests/build-real.test.ts
// Without the variable the tests are reported as skipped, with the reason in their name.
import { describe, expect, test } from 'vitest';
import { getKernel, type Kernel } from '../harness/kernels.js';
import { Vm } from '../harness/vm.js';

const enabled = process.env.BPF_HARNESS_SOURCE_BUILD === '1';
const name = process.env.BPF_HARNESS_SOURCE_KERNEL || '5.10-src';
const say = (m: string) => console.log(`[build] ${m}`);

describe.skipIf(!enabled)(`real source build of ${name} (opt-in: set BPF_HARNESS_SOURCE_BUILD=1)`, () => {
  let kernel: Kernel;

  test('builds (or reuses) the kernel; a second resolution is a cache hit within seconds', async () => {
    const t0 = Date.now();
    kernel = await getKernel(name, { onProgress: say });
    say(`first resolution: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(kernel.modulesDir).toBeNull();
    const t1 = Date.now();
    const again = await getKernel(name);
    const cachedMs = Date.now() - t1;
    say(`cached resolution: ${(cachedMs / 1000).toFixed(1)} s`);
    expect(again.bzImage).toBe(kernel.bzImage);
    expect(cachedMs).toBeLessThan(60_000);
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
  }, 900_000);
});
