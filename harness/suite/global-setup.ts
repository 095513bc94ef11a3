// Runs once per test run, before any suite file: fetches the kernel, builds the image, probes
// the accelerator and checks the kernel's snapshot (planGuest, as Vm.start plans a start), so that
// parallel suite files find everything cached and print no progress.
// It also gives the suite files a directory they share for the run (harness/suite/run-state.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProvidedContext } from 'vitest';
import type { TestProject } from 'vitest/node';
import { settings } from '../base/config.js';
import { getKernel, type Kernel } from '../kernels/catalog.js';
import { planGuest } from '../guest/vm.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The run's shared state directory (harness/suite/run-state.ts). */
    runStateDir: string;
    /** The kernel of the run, resolved once (a source tree is not hashed again by every suite file). */
    kernel: Kernel;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const say = (m: string) => console.log(`[harness] ${m}`);
  const t = Date.now();
  const stateDir = await mkdtemp(join(tmpdir(), 'bpf-harness-run-'));
  project.provide('runStateDir', stateDir);
  // Every variable is read here (a bad value fails the run before anything boots). The CLI
  // resolves the kernel before vitest starts and provides it (harness/cli/suite.ts); vitest run
  // alone resolves it here.
  settings();
  const handed = (project.getProvidedContext() as Partial<ProvidedContext>).kernel;
  const kernel = handed ?? await getKernel(undefined, { onProgress: say });
  project.provide('kernel', kernel);
  const { image, probe, snapshot } = await planGuest({ kernel }, say);
  const from = snapshot ? `guests start from its snapshot ${snapshot.dir}` : 'guests boot (the first saves a snapshot when the kernel can be restored)';
  say(`kernel ${kernel.name} = ${kernel.pinned} (${kernel.release}); accelerator ${probe.accel}: ${probe.reason}; ${from}; ready in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  if (image.missingModules.length) say(`modules this kernel has neither built in nor as a module: ${image.missingModules.join(', ')}`);
  return async () => {
    await rm(stateDir, { recursive: true, force: true });
  };
}
