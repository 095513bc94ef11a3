// Guest snapshots: a guest booted to "ready for ssh" is saved once, and later guests of the same
// kernel, image, QEMU and machine start from it instead of booting: a fraction of a second
// instead of seconds.
//
// The guest's memory is a file. The boot that saves runs on a shared file in /dev/shm; the save
// pauses it, writes QEMU's device state (a migration stream that leaves the file-backed memory
// out: x-ignore-shared, 1 MB) and copies the memory file (sparse: a tenth of it is data). A
// restored guest maps the snapshot's memory file privately, copy-on-write: nothing is read until
// the guest touches it, and the snapshot is never written. Each restored guest
// then redoes what must differ between guests (bpf-agent --after-restore: fresh host randomness,
// credited and reseeded, and the host's time), and gets an SSH connection of its own with the
// host key checked, as a booted one does.
//
// The save is taken before any SSH connection exists, so no guest connection state is in it. It
// is a cache entry like the others (harness/base/cache.ts): keyed by content, published by one run
// while any other boots plainly, verified (once per host boot, and again when one of its files
// changed), and removed when it fails that or QEMU cannot load it.
//
// This module is what a snapshot is and where it lives: its key, its cache entry (found, dropped,
// pruned when unused), the memory file of a boot that may be saved (and the sweep of those a
// killed run left behind), and whether a kernel can be restored at all. Saving one is
// snapshot-save.ts, starting a guest from one snapshot-restore.ts.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { readdir, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { contentKey, existingEntry, inputSha256, removeEntry } from '../base/cache.js';
import { cacheRoot, settings } from '../base/config.js';
import { pidAlive } from '../base/procs.js';
import { type QemuConfig, qemuArgs } from './qemu.js';
import { which } from '../base/tools.js';

export const SNAPSHOT_AREA = 'snapshots';
/** The files of an entry: the guest's memory, and QEMU's device state (a migration stream). */
export const MEMORY_FILE = 'memory';
export const DEVICES_FILE = 'devices';
/** The console of the boot that was saved, for a restored guest's failures. */
export const BOOT_CONSOLE = 'boot-console.log';
/** Bumped when what a snapshot holds, or how it is restored, changes. */
const FORMAT = 'bpf-harness-snapshot-2';

/** Whether guests start from snapshots: the caller's choice, else BPF_HARNESS_SNAPSHOT (default on). */
export function snapshotsWanted(asked?: boolean): boolean {
  return asked ?? settings().snapshot;
}

/**
 * What a file's contents are known by: a file inside the cache is named by its entry's content
 * key (verified by the cache when it was handed out: the kernel's PVH image, the initramfs), any
 * other file by its sha256 (a bzImage given by path), read once per process while it is unchanged.
 */
async function contentOf(path: string): Promise<string> {
  const root = cacheRoot() + sep;
  if (path.startsWith(root)) return `cache:${path.slice(root.length)}`;
  return inputSha256(path);
}

let qemuIdentity: string | undefined;
/**
 * QEMU's version line, and its binary's size and modification time: a snapshot loads only into
 * the QEMU that saved it, and a package upgrade replaces the binary.
 */
function qemuId(): string {
  if (!qemuIdentity) {
    const bin = which('qemu-system-x86_64');
    const version = execFileSync(which('qemu-system-x86_64'), ['--version'], { encoding: 'utf8' }).split('\n')[0];
    const st = statSync(realpathSync(bin));
    qemuIdentity = `${version} ${st.size} ${st.mtimeMs}`;
  }
  return qemuIdentity;
}

/** Under KVM the guest's CPU is the host's (-cpu host): a snapshot is only good on the same CPU. */
function hostCpu(): string {
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  const first = info.split('\n\n')[0];
  return ['vendor_id', 'cpu family', 'model', 'stepping', 'microcode', 'flags'].map((f) => new RegExp(`^${f}\\s*:(.*)$`, 'm').exec(first)?.[1]?.trim() ?? '').join('|');
}

/**
 * The key of a guest's snapshot: the format, QEMU, the contents of the kernel and initramfs, and
 * every machine argument, with what changes per guest left out (the entropy seed, which a restore
 * replaces, and the SSH port, which is the host side of the port forward and not part of the saved
 * machine).
 */
export async function snapshotKey(c: QemuConfig): Promise<string> {
  if (!c.initramfs) throw new Error('a snapshot needs the guest image (initramfs)');
  const machine = qemuArgs({ ...c, seed: undefined, sshPort: 0, qmp: undefined, memoryFile: undefined, incoming: undefined });
  return contentKey(FORMAT, qemuId(), await contentOf(c.bzImage), await contentOf(c.initramfs), machine.join('\0'), c.accel === 'kvm' ? hostCpu() : '');
}

export interface Snapshot {
  key: string;
  /** The entry's directory. */
  dir: string;
  memory: string;
  devices: string;
  bootConsole: string;
}

/** The snapshot `key` whose entry is `dir`. */
export function snapshotIn(key: string, dir: string): Snapshot {
  return { key, dir, memory: join(dir, MEMORY_FILE), devices: join(dir, DEVICES_FILE), bootConsole: join(dir, BOOT_CONSOLE) };
}

/**
 * The verified snapshot of this key, or null; a corrupt one is removed (saying so) and null. A
 * snapshot found is marked used now (its directory's time), for pruneSnapshots.
 */
export async function findSnapshot(key: string, onProgress?: (m: string) => void): Promise<Snapshot | null> {
  const dir = await existingEntry(SNAPSHOT_AREA, key, onProgress);
  if (!dir) return null;
  const now = new Date();
  await utimes(dir, now, now).catch(() => {});
  return snapshotIn(key, dir);
}

/** Snapshots not used for this long are removed when another is saved. */
export const SNAPSHOT_UNUSED_MS = 14 * 24 * 3600_000;

/**
 * Removes the snapshots that no start has used for `unusedMs` (their kernel, image or QEMU is
 * gone or changed, so their key never comes again), each 100 MB or so. Returns their keys.
 */
export async function pruneSnapshots(unusedMs = SNAPSHOT_UNUSED_MS, onProgress?: (m: string) => void): Promise<string[]> {
  const area = join(cacheRoot(), SNAPSHOT_AREA);
  const removed: string[] = [];
  for (const e of await readdir(area, { withFileTypes: true }).catch(() => [])) {
    if (!e.isDirectory() || !/^[0-9a-f]+$/.test(e.name)) continue;
    const used = await stat(join(area, e.name)).then((st) => st.mtimeMs, () => Date.now());
    if (Date.now() - used < unusedMs) continue;
    await removeEntry(SNAPSHOT_AREA, e.name);
    removed.push(e.name);
  }
  if (removed.length) onProgress?.(`removed ${removed.length} guest snapshot${removed.length > 1 ? 's' : ''} unused for ${Math.round(unusedMs / 86_400_000)} days: ${removed.join(', ')}`);
  return removed;
}

let ramCounter = 0;
/**
 * Where a booting guest's memory goes when it may be saved: a file in /dev/shm (memory, not
 * disk), named by this process so that one left by a killed run can be swept.
 */
export function bootMemoryFile(): string {
  return join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `bpf-harness-ram-${process.pid}-${++ramCounter}`);
}

/** Removes memory files of booting guests whose process is gone (a run that was killed). */
export async function sweepBootMemory(): Promise<void> {
  for (const dir of ['/dev/shm', tmpdir()]) {
    for (const e of await readdir(dir).catch(() => [] as string[])) {
      const m = /^bpf-harness-ram-(\d+)-\d+$/.exec(e);
      if (m && !pidAlive(Number(m[1]))) await rm(join(dir, e), { force: true });
    }
  }
}

/** Forgets a snapshot that would not load, so that the next boot saves a good one. */
export async function dropSnapshot(key: string): Promise<void> {
  await removeEntry(SNAPSHOT_AREA, key);
}

/** True when init's entropy line says the kernel reseeded its CRNG on demand (what a restore needs). */
export function canReseed(entropyLine: string | undefined): boolean {
  return Boolean(entropyLine && /reseeded the CRNG/.test(entropyLine));
}

/** How much of a snapshot's memory file is data (it is sparse), for messages. */
export function snapshotSize(s: Snapshot): string {
  return `${Math.round((statSync(s.memory).blocks * 512) / 2 ** 20)} MiB`;
}
