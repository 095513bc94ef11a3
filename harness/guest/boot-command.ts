// The command line of a guest boot, in one place: Vm.start runs it, and `boot --dry-run` prints
// it. QEMU runs under `setpriv --pdeathsig SIGKILL`, so that it dies with the process that started
// it even when that process is killed outright; a keepable guest (--keep-on-fail) runs under the
// keeper (harness/guest/keeper.mjs), which can leave it up after the run ends.
import { join } from 'node:path';
import { settings } from '../base/config.js';
import { REPO_ROOT } from '../base/paths.js';
import { type Accel, type QemuConfig, qemuArgs } from './qemu.js';
import { which } from '../base/tools.js';

/** Plain JavaScript in harness/, run as is from the sources and from the build alike. */
export const KEEPER = join(REPO_ROOT, 'harness', 'guest', 'keeper.mjs');

/** A guest's memory and CPUs unless a suite asks for others. */
export const DEFAULT_MEMORY_MIB = 1024;
export const DEFAULT_CPUS = 2;

export interface BootPlan {
  accel: Accel;
  bzImage: string;
  initramfs: string;
  /** Host port forwarded to the guest's SSH server. */
  sshPort: number;
  memoryMiB?: number;
  cpus?: number;
  /** Extra kernel command line, after BPF_HARNESS_APPEND's. */
  append?: string;
  /** The entropy seed on the kernel command line (hex), if any. */
  seed?: string;
  rng?: boolean;
  /**
   * Saved or restored through snapshots (harness/guest/snapshot.ts): the vmgenid device, a QMP socket,
   * the guest's memory in a file, and (a restore) waiting for the saved device state.
   */
  snapshot?: { qmp: string; memoryFile: { path: string; shared: boolean }; incoming?: boolean };
  /** Under the keeper; default: BPF_HARNESS_KEEP_ON_FAIL. */
  keepable?: boolean;
}

export interface BootCommand {
  /** The whole argument vector to spawn: argv[0] is the program. */
  argv: string[];
  keepable: boolean;
}

/** The machine a plan describes (what a snapshot is keyed by, harness/guest/snapshot.ts). */
export function bootConfig(p: BootPlan): QemuConfig {
  return {
    accel: p.accel,
    bzImage: p.bzImage,
    initramfs: p.initramfs,
    memoryMiB: p.memoryMiB ?? DEFAULT_MEMORY_MIB,
    cpus: p.cpus ?? DEFAULT_CPUS,
    sshPort: p.sshPort,
    // BPF_HARNESS_APPEND: the user's own additions to every guest's command line.
    append: [settings().append, p.append].filter(Boolean).join(' ') || undefined,
    seed: p.seed,
    rng: p.rng,
    vmgenid: p.snapshot !== undefined,
    qmp: p.snapshot?.qmp,
    memoryFile: p.snapshot?.memoryFile,
    incoming: p.snapshot?.incoming,
  };
}

/** The argv a boot runs: [node keeper.mjs] setpriv --pdeathsig SIGKILL -- qemu-system-x86_64 ARGS. */
export function bootCommand(p: BootPlan): BootCommand {
  const qemu = which('qemu-system-x86_64');
  const args = qemuArgs(bootConfig(p));
  const guarded = [which('setpriv'), '--pdeathsig', 'SIGKILL', '--', qemu, ...args];
  const keepable = p.keepable ?? settings().keepOnFail;
  return { argv: keepable ? [process.execPath, KEEPER, ...guarded] : guarded, keepable };
}
