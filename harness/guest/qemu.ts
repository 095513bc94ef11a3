// QEMU command lines, built by one pure function from small groups (each with its reason), and
// the accelerator probe: KVM is used only when a short probe boot shows that it really runs a
// kernel; otherwise TCG. The probe result is cached per host boot.
import { existsSync, constants, accessSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { cacheRoot, config, settings } from '../base/config.js';
import { hostSlowness } from '../base/host-speed.js';
import { bootId } from '../base/procs.js';
import { shq } from '../base/quote.js';
import { which } from '../base/tools.js';

export type Accel = 'kvm' | 'tcg';

export interface QemuConfig {
  accel: Accel;
  /** The kernel QEMU boots: a bzImage, or the PVH vmlinux unpacked from one (harness/guest/pvh.ts). */
  bzImage: string;
  initramfs?: string;
  /** Extra kernel command line. */
  append?: string;
  memoryMiB: number;
  cpus: number;
  /** Host port forwarded to the guest's SSH port, on 127.0.0.1 only. */
  sshPort?: number;
  /**
   * A fresh random seed (hex) for the guest's entropy pool, put on the kernel command line as
   * bpf_harness.seed= and credited by the image's init before the SSH server starts.
   */
  seed?: string;
  /** Add QEMU's virtio-rng device (default false: the seed suffices, and the device costs boot time). */
  rng?: boolean;
  /**
   * Add QEMU's vmgenid device: a guest started from a snapshot gets a new generation id, from
   * which kernels with the driver (5.18+, CONFIG_VMGENID) reseed their random generator at once.
   */
  vmgenid?: boolean;
  /** A unix socket path for QEMU's machine protocol (QMP), to save or resume the guest. */
  qmp?: string;
  /**
   * The guest's memory in a file rather than anonymous memory: shared (the boot that a snapshot
   * is saved from writes it), or private (a restored guest maps the snapshot's copy-on-write).
   */
  memoryFile?: { path: string; shared: boolean };
  /** Wait for a saved guest's device state (migrate-incoming over QMP) instead of booting. */
  incoming?: boolean;
}

/** Why: a guest that panics must end the run at once instead of rebooting or hanging. */
function panicArgs(): string[] {
  return ['-no-reboot'];
}

/** Why: KVM runs at native speed where it works; TCG works everywhere. */
function accelArgs(accel: Accel): string[] {
  return accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max'];
}

/**
 * Why: no default devices, no user config, no window: the guest has only what we add. Threads
 * named by what they do ("CPU 0/TCG"), so that the harness can read each vCPU's run and wait time
 * on the host (harness/guest/vcpu-time.ts) and tell a starved guest from a stalled kernel.
 */
function machineArgs(c: QemuConfig): string[] {
  const memory = c.memoryFile
    ? ['-machine', 'pc,memory-backend=ram0', '-object', `memory-backend-file,id=ram0,size=${c.memoryMiB}M,mem-path=${c.memoryFile.path.replaceAll(',', ',,')},share=${c.memoryFile.shared ? 'on' : 'off'}`]
    : ['-machine', 'pc'];
  return ['-name', 'bpf-harness,debug-threads=on', '-nodefaults', '-no-user-config', '-display', 'none', ...memory, '-m', String(c.memoryMiB), '-smp', String(c.cpus)];
}

/** Why: the serial console goes to our stdout, which the harness logs and scans for panics. */
function consoleArgs(): string[] {
  return ['-serial', 'stdio', '-monitor', 'none'];
}

/**
 * Why: direct kernel boot skips the bootloader; panic=-1 turns a panic into a QEMU exit;
 * no_timer_check because a loaded host makes TCG miss the IO-APIC timer check, which panics.
 * cryptomgr.notests only shortens the boot: it skips the crypto self-tests of early boot (0.2 s
 * under TCG), which nothing a BPF program sees depends on. (acpi=noirq or pci=noacpi would save
 * another 0.1 s a PCI device, but make 6.1 WARN in pci_msi_setup_msi_irqs when virtio_net loads.)
 */
function kernelArgs(c: QemuConfig): string[] {
  const seed = c.seed ? `bpf_harness.seed=${c.seed}` : '';
  const cmdline = ['console=ttyS0', 'earlyprintk=serial,ttyS0', 'panic=-1', 'no_timer_check', 'rdinit=/init', 'net.ifnames=0', 'nokaslr', 'cryptomgr.notests', seed, c.append ?? ''];
  const args = ['-kernel', c.bzImage, '-append', cmdline.filter(Boolean).join(' ')];
  if (c.initramfs) args.push('-initrd', c.initramfs);
  return args;
}

/**
 * Why: user-mode networking needs no root; restrict=on keeps the guest off every network but the
 * forwarded SSH port, which listens on 127.0.0.1 only.
 */
function netArgs(c: QemuConfig): string[] {
  if (c.sshPort === undefined) return ['-nic', 'none'];
  return [
    '-netdev', `user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:${c.sshPort}-:22`,
    '-device', 'virtio-net-pci,netdev=net0',
  ];
}

/**
 * Why: a guest without an entropy source never initialises its random pool on kernels before
 * 5.4's jitter entropy, and the SSH server blocks. The seed on the command line covers every
 * kernel; virtio-rng, which feeds the pool from the host on kernels with the driver, is there only
 * when asked for: probing one more PCI device costs about 0.1 s of boot under TCG.
 */
function rngArgs(c: QemuConfig): string[] {
  if (c.rng !== true) return [];
  return ['-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0'];
}

/**
 * Why: a guest is saved and restored through QMP and a migration stream (harness/guest/snapshot.ts);
 * vmgenid tells a restored guest's kernel that it is a copy, so that it reseeds at once.
 */
function snapshotArgs(c: QemuConfig): string[] {
  const args: string[] = [];
  if (c.vmgenid) args.push('-device', 'vmgenid,guid=auto');
  if (c.qmp) args.push('-qmp', `unix:${c.qmp},server=on,wait=off`);
  if (c.incoming) args.push('-incoming', 'defer');
  return args;
}

/** The whole QEMU argument vector (without the binary). Pure: same config, same arguments. */
export function qemuArgs(c: QemuConfig): string[] {
  return [...machineArgs(c), ...accelArgs(c.accel), ...panicArgs(), ...consoleArgs(), ...kernelArgs(c), ...rngArgs(c), ...netArgs(c), ...snapshotArgs(c)];
}

/** A shell-quoted command line, for dry runs and error messages. */
export function formatCommand(bin: string, args: string[]): string {
  return [bin, ...args].map(shq).join(' ');
}

/**
 * Seconds the harness waits for each stage, scaled by how fast the accelerator runs a guest and by
 * this host's measured slowness (harness/base/host-speed.ts: 1 on the machines the waits were set
 * on, more on a slower or loaded one; BPF_HARNESS_TIMEOUT_SCALE when set).
 */
export function timeouts(accel: Accel): { bootMs: number; silentMs: number; hungMs: number; sshdMs: number; commandMs: number; shutdownMs: number; keepaliveMs: number } {
  const k = (accel === 'kvm' ? 1 : 4) * hostSlowness();
  // Whole milliseconds: a measured factor is fractional, and the agent takes integers only.
  const ms = (n: number) => Math.round(n);
  return {
    /** From QEMU's start to the SSH handshake, at most. */
    bootMs: ms(30_000 * k),
    /** A kernel prints its first console line within a second; one silent this long never will. */
    silentMs: ms(5_000 * k),
    /**
     * A kernel that printed nothing this long before it ran init, its vCPUs halted all that time,
     * has hung: a boot prints every fraction of a second, and one the host starves is not halted.
     */
    hungMs: ms(7_500 * k),
    /** From init's "starting sshd" to the handshake (dropbear answers within a second when it can). */
    sshdMs: ms(7_500 * k),
    commandMs: ms(30_000 * k),
    shutdownMs: 5_000,
    /** A guest that answers no SSH keepalive for this long has stopped (checked every 5 s). */
    keepaliveMs: ms(30_000 * hostSlowness()),
  };
}

function kvmUsable(): boolean {
  if (!existsSync('/dev/kvm')) return false;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}


export interface ProbeResult {
  accel: Accel;
  reason: string;
  /** Set when the verdict was read from the per-boot cache file rather than probed now. */
  cachedIn?: string;
}

/**
 * Boots the kernel under KVM with no root filesystem: a working KVM gets through the whole kernel
 * boot to the "unable to mount root" panic within a few seconds and QEMU exits (panic=-1,
 * -no-reboot). A KVM that opens but hangs guests prints nothing and is killed at the deadline.
 */
export async function probeKvm(bzImage: string, deadlineMs = 8_000): Promise<ProbeResult> {
  if (!kvmUsable()) return { accel: 'tcg', reason: '/dev/kvm is missing or not accessible' };
  const args = [...machineArgs({ memoryMiB: 256, cpus: 1 } as QemuConfig), ...accelArgs('kvm'), ...panicArgs(), ...consoleArgs(), ...kernelArgs({ bzImage } as QemuConfig), '-nic', 'none'];
  const r = await execa(which('qemu-system-x86_64'), args, { timeout: deadlineMs, reject: false, stdin: 'ignore', all: true, killSignal: 'SIGKILL' });
  const out = r.all ?? '';
  if (/Kernel panic|VFS: Unable to mount root|Run \/init/.test(out)) return { accel: 'kvm', reason: 'a probe boot under KVM reached the end of kernel init' };
  if (r.timedOut) return { accel: 'tcg', reason: `KVM opens but a probe boot printed ${out.length ? 'too little' : 'nothing'} in ${deadlineMs / 1000} s` };
  return { accel: 'tcg', reason: `KVM probe boot failed: ${out.split('\n').filter(Boolean).slice(-2).join(' / ') || `exit ${r.exitCode}`}` };
}

/**
 * The accelerator to use: BPF_HARNESS_ACCEL=kvm|tcg forces one; otherwise the probe decides,
 * once per host boot.
 */
export async function chooseAccel(bzImage: string, onProgress?: (m: string) => void): Promise<ProbeResult> {
  const forced = settings().accel;
  if (forced) return { accel: forced, reason: `set by ${config.accel.name}` };
  const file = accelCacheFile();
  try {
    const cached = JSON.parse(await readFile(file, 'utf8')) as Partial<ProbeResult>;
    if ((cached.accel === 'kvm' || cached.accel === 'tcg') && typeof cached.reason === 'string') {
      return { accel: cached.accel, reason: `${cached.reason} (probed earlier on this boot; cached in ${file})`, cachedIn: file };
    }
    onProgress?.(`ignoring ${file}: not a probe result`);
  } catch {
    /* not probed yet on this boot */
  }
  onProgress?.('probing whether KVM works (one short boot)');
  const result = await probeKvm(bzImage);
  await mkdir(join(cacheRoot(), 'probe'), { recursive: true });
  await writeFile(file, JSON.stringify(result));
  onProgress?.(`accelerator: ${result.accel} (${result.reason})`);
  return result;
}

/** Where the probe's verdict is kept for this host boot. */
export function accelCacheFile(): string {
  return join(cacheRoot(), 'probe', `accel-${bootId()}.json`);
}
