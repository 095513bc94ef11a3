// What a boot that failed says beyond its first line: why a guest has no network and what to do
// about it (from what init said), and how long its console had been silent by the deadline, with
// what the vCPUs did meanwhile (starved, halted or running).
import type { ConsoleLog } from './console.js';
import type { Kernel } from '../kernels/catalog.js';
import { silenceCause, type Starvation, type VcpuMonitor } from './vcpu-time.js';

/** A console silent for this long before a boot's deadline is named, with what the vCPUs did. */
const SILENCE_WORTH_MS = 2_000;

/** Why a guest has no network, as init said it, and what to do about it. */
export function noNetworkMessage(kernel: Kernel, said: string[]): string {
  const { name, release, modulesDir } = kernel;
  const lacks = ['virtio_pci', 'virtio_net'].filter((d) => said.some((l) => l.includes(`the ${d} driver is neither built in`)));
  let hint: string;
  if (lacks.length && !modulesDir) {
    hint = `kernel ${name} was booted without a modules directory, so the image has no modules: for a bzImage given by path whose ${lacks.join(' and ')} ${lacks.length > 1 ? 'are modules' : 'is a module'}, pass its modules (--modules /path/to/lib/modules/${release}, or BPF_HARNESS_MODULES), or build ${lacks.length > 1 ? 'them' : 'it'} in (${lacks.map((d) => `CONFIG_${d.toUpperCase()}=y`).join(', ')})`;
  } else if (lacks.length) {
    hint = `${modulesDir} has no ${lacks.join(' or ')} module and the kernel has ${lacks.length > 1 ? 'them' : 'it'} not built in: build the kernel with ${lacks.map((d) => `CONFIG_${d.toUpperCase()}=y or =m`).join(', ')}`;
  } else if (said.some((l) => l.includes('is a module in the image but is not loaded'))) {
    hint = 'look for init\'s "insmod … failed" line on the console';
  } else if (said.some((l) => l.includes('no virtio network device on the PCI bus'))) {
    hint = 'QEMU was started without its virtio-net-pci device (see the command line of the boot)';
  } else {
    hint = 'init could not configure eth0 (10.0.2.15/24, default route via 10.0.2.2) as the harness\'s port forward needs';
  }
  return `the guest has no network, so its SSH server cannot be reached; init said:\n${said.map((l) => `  ${l}`).join('\n')}\n${hint}`;
}


/** A console's silence: since which line, for how long, and what the vCPUs did meanwhile. */
export interface Silence {
  line: string;
  silentMs: number;
  vcpus: Starvation | null;
}

/** The console's silence up to now, with the vCPUs' figures over it; null before its first line. */
export function measureSilence(console: ConsoleLog, vcpus: VcpuMonitor | undefined): Silence | null {
  const last = console.lastGuestLine;
  if (!last) return null;
  const silentMs = performance.now() - last.at;
  return { line: last.line.trim(), silentMs, vcpus: vcpus?.starvation(silentMs, 'of the silence') ?? null };
}

/** A silence in words, when it was long enough to matter: empty otherwise. */
export function silenceNote(q: Silence | null): string {
  if (!q || q.silentMs < SILENCE_WORTH_MS) return '';
  return `; its console has been silent for ${Math.round(q.silentMs / 1000)} s since "${q.line}"${q.vcpus ? `: ${silenceCause(q.vcpus)}` : ''}`;
}
