// Runs once per test run, before any suite file: fetches the kernel, builds the image and probes
// the accelerator, so that parallel suite files find everything cached and print no progress.
import { buildImage } from './image.js';
import { getKernel } from './kernels.js';
import { chooseAccel } from './qemu.js';

export default async function setup(): Promise<void> {
  const say = (m: string) => console.log(`[harness] ${m}`);
  const t = Date.now();
  const kernel = await getKernel(undefined, { onProgress: say });
  const image = await buildImage(kernel, say);
  const { accel, reason } = await chooseAccel(kernel.bzImage, say);
  say(`kernel ${kernel.name} = ${kernel.pinned} (${kernel.release}); accelerator ${accel}: ${reason}; ready in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  if (image.missingModules.length) say(`modules this kernel has neither built in nor as a module: ${image.missingModules.join(', ')}`);
}
