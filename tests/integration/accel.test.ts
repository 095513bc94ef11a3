// The accelerator verdict cached for a host boot is checked, said to come from the cache, and
// forgotten when a guest fails under it: a planted wrong verdict costs one run, not every run.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { cacheRoot } from '../../harness/base/cache.js';
import { overrideSettings } from '../../harness/base/config.js';
import { getKernel } from '../../harness/kernels/catalog.js';
import { buildImage } from '../../harness/guest/image.js';
import { accelCacheFile, chooseAccel, probeKvm } from '../../harness/guest/qemu.js';
import { Vm, VmError } from '../../harness/guest/vm.js';
import { hostMs } from '../helpers/timeouts.js';

test('a cached KVM verdict that the guest fails under is named in the error and removed', async (ctx) => {
  const kernel = await getKernel();
  await buildImage(kernel);
  // Only meaningful where KVM does not work (here: a nested KVM that hangs or breaks guests).
  if ((await probeKvm(kernel.bzImage)).accel === 'kvm') ctx.skip('KVM works on this host: a kvm verdict is not wrong here');
  const real = cacheRoot();
  const scratch = await mkdtemp(join(tmpdir(), 'accel-cache-'));
  // The real cache's entries but its own accelerator verdict (probe/): the guest that comes up
  // after the re-probe starts from the kernel's snapshot, as every guest of a run does, instead of
  // booting and saving one of its own.
  for (const area of ['kernels', 'images', 'initramfs', 'snapshots']) {
    await mkdir(join(real, area), { recursive: true });
    await symlink(join(real, area), join(scratch, area));
  }
  const restore = overrideSettings({ cache: scratch });
  try {
    const file = accelCacheFile();
    await mkdir(join(scratch, 'probe'), { recursive: true });
    await writeFile(file, JSON.stringify({ accel: 'kvm', reason: 'planted by the test' }));
    expect((await chooseAccel(kernel.bzImage)).reason).toBe(`planted by the test (probed earlier on this boot; cached in ${file})`);
    const err = await Vm.start({ kernel, label: 'planted-kvm' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VmError);
    expect((err as VmError).message).toContain(`The guest ran under KVM because ${file} said so; that file is removed`);
    expect(existsSync(file)).toBe(false);
    // The next start probes again and comes up.
    const vm = await Vm.start({ kernel, label: 'reprobed' });
    expect(vm.accel).toBe('tcg');
    await vm.stop();

    // A file that is not a verdict is ignored, not trusted.
    await writeFile(file, JSON.stringify({ accel: 'fast' }));
    expect((await chooseAccel(kernel.bzImage)).accel).toBe('tcg');
  } finally {
    restore();
  }
}, hostMs(300_000));
