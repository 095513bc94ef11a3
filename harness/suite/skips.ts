// Why a test of a suite cannot run on this guest's kernel, if it cannot: its program type, asked
// of the kernel when the type has a probe (probe.ts), else judged by the type's first version.
import type { Agent } from '../agent/agent.js';
import type { Vm } from '../guest/vm.js';
import { atLeast, type Kernel } from '../kernels/catalog.js';
import { featureVerdict, typeNeeds } from './probe.js';
import { PROGRAM_TYPES, type ProgramTypeName } from './progtypes.js';

/** The reason to skip a test of program type `type` on this guest, or undefined when it can run. */
export async function typeSkipReason(type: ProgramTypeName, vm: Vm, agent: Agent | undefined): Promise<string | undefined> {
  const { since } = PROGRAM_TYPES[type];
  if ('probe' in PROGRAM_TYPES[type] && agent) return (await featureVerdict({ ssh: vm.ssh, kernel: vm.kernel, agent }, typeNeeds(type))) ?? undefined;
  if (!atLeast(vm.kernel.version, since)) return `needs ${since}: program type ${type} (kernel ${vm.kernel.release})`;
  return undefined;
}

/** The reason to skip a test that needs kernel `version` for `feature`, or undefined. */
export function versionSkipReason(kernel: Kernel, version: string, feature: string): string | undefined {
  return atLeast(kernel.version, version) ? undefined : `needs ${version}: ${feature} (kernel ${kernel.release})`;
}
