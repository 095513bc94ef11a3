// What a guest start is made of, resolved once for Vm.start and `boot --dry-run`: the kernel, the
// image, the accelerator, the kernel QEMU boots (bzImage, or the PVH entry of its vmlinux), the
// snapshot key and the snapshot a start restores; and the boot plan of one start from it, with a
// free host port for its SSH forward.
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Fault } from './console.js';
import { buildImage, type Image } from './image.js';
import type { Kernel } from '../kernels/catalog.js';
import { type BootPlan, bootConfig } from './boot-command.js';
import { bootMemoryFile, findSnapshot, type Snapshot, snapshotKey, snapshotsWanted } from './snapshot.js';
import { type Accel, chooseAccel } from './qemu.js';
import { bootKernel } from './pvh.js';

export type VmEvent =
  | { type: 'progress'; message: string }
  | { type: 'booting'; kernel: string; accel: Accel; command: string }
  | { type: 'ready'; kernel: string; bootMs: number; from: 'boot' | 'snapshot' }
  | { type: 'fault'; kind: Fault; line: string }
  | { type: 'stopped'; kernel: string; code: number | null };

export interface VmOptions {
  /** The kernel, resolved (getKernel in harness/kernels/catalog.ts fetches, builds and checks one): a start only boots it. */
  kernel: Kernel;
  memoryMiB?: number;
  cpus?: number;
  /** Names the log directory, e.g. the suite. */
  label?: string;
  /** Extra kernel command line. */
  append?: string;
  /** How long to wait for SSH; default scales with the accelerator. */
  bootTimeoutMs?: number;
  /**
   * Where the guest's entropy comes from: a fresh seed on the command line that init credits,
   * (by default), and QEMU's virtio-rng device (only when asked for: it costs boot time).
   */
  entropy?: { seed?: boolean; rng?: boolean };
  /**
   * Start QEMU under a keeper (harness/guest/keeper.mjs) so that keep() can leave the guest running
   * after this process ends (--keep-on-fail). Default: BPF_HARNESS_KEEP_ON_FAIL=1.
   */
  keepable?: boolean;
  /**
   * Start from a snapshot of the same guest booted earlier, and save one when there is none
   * (harness/guest/snapshot.ts). Default: BPF_HARNESS_SNAPSHOT (on); false boots every time.
   */
  snapshot?: boolean;
  onEvent?: (e: VmEvent) => void;
}

/** A free TCP port on the host's loopback: the host side of a start's SSH forward (startPlan's sshPort). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

let qmpCounter = 0;
/** A QMP socket path short enough for a unix socket (108 bytes), whatever the results directory. */
export function qmpSocketPath(): string {
  return join(tmpdir(), `bpf-harness-qmp-${process.pid}-${++qmpCounter}.sock`);
}

/** What a guest start is made of, resolved once (Vm.start, and `boot --dry-run`'s printout). */
export interface GuestPlan {
  kernel: Kernel;
  image: Image;
  probe: ReturnType<typeof chooseAccel> extends Promise<infer P> ? P : never;
  accel: Accel;
  /** The boot plan for a given SSH port, plus any per-start parts. */
  plan: (sshPort: number, extra?: Partial<BootPlan>) => BootPlan;
  /** The snapshot key when guests may start from snapshots. */
  key?: string;
  /** The verified snapshot a start restores, if there is one. */
  snapshot: Snapshot | null;
}

/** The image, accelerator, boot image and snapshot of a guest start of a resolved kernel. */
export async function planGuest(opts: VmOptions, progress: (m: string) => void = () => {}): Promise<GuestPlan> {
  const { kernel } = opts;
  const image = await buildImage(kernel, progress);
  const probe = await chooseAccel(kernel.bzImage, progress);
  const bootImage = await bootKernel(kernel.bzImage, progress);
  const plan = (sshPort: number, extra: Partial<BootPlan> = {}): BootPlan => ({
    accel: probe.accel,
    bzImage: bootImage,
    initramfs: image.initramfs,
    memoryMiB: opts.memoryMiB,
    cpus: opts.cpus,
    sshPort,
    append: opts.append,
    rng: opts.entropy?.rng,
    keepable: opts.keepable,
    ...extra,
  });
  // A snapshot stands for a boot only where the guest would not differ: not when the caller asks
  // for its own seed handling (entropy.seed false), which is about the boot itself.
  const wanted = snapshotsWanted(opts.snapshot) && opts.entropy?.seed !== false;
  const key = wanted ? await snapshotKey(bootConfig(plan(0, { snapshot: { qmp: '', memoryFile: { path: '', shared: true } } }))) : undefined;
  const snapshot = key ? await findSnapshot(key, progress) : null;
  return { kernel, image, probe, accel: probe.accel, plan, key, snapshot };
}

/** The boot plan of a start: a restore of the plan's snapshot when it has one, else a boot that may save one. */
export function startPlan(g: GuestPlan, sshPort: number, seed: string | undefined): BootPlan {
  if (g.snapshot) return g.plan(sshPort, { snapshot: { qmp: qmpSocketPath(), memoryFile: { path: g.snapshot.memory, shared: false }, incoming: true } });
  return g.plan(sshPort, { seed, snapshot: g.key ? { qmp: qmpSocketPath(), memoryFile: { path: bootMemoryFile(), shared: true } } : undefined });
}
