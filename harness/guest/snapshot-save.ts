// Saving a booting guest as its kernel's snapshot (what a snapshot is and why: snapshot.ts): once
// init is ready for SSH and before any connection, when the kernel can reseed its random generator
// on demand, the guest is paused over QMP, its device state written, its memory file copied, and
// resumed; the entry is published in the cache, and snapshots unused for long are pruned. A save
// that fails is said and the boot goes on.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { tryPublish } from '../base/cache.js';
import { shq } from '../base/quote.js';
import { which } from '../base/tools.js';
import type { BootPlan } from './boot-command.js';
import type { ConsoleLog } from './console.js';
import { Qmp } from './qmp.js';
import { BOOT_CONSOLE, canReseed, DEVICES_FILE, MEMORY_FILE, pruneSnapshots, type Snapshot, SNAPSHOT_AREA, SNAPSHOT_UNUSED_MS, snapshotIn, snapshotSize } from './snapshot.js';

interface MigrationInfo {
  status: string;
  'error-desc'?: string;
  'total-time'?: number;
}

async function migrationDone(qmp: Qmp, deadlineMs: number): Promise<MigrationInfo> {
  const until = performance.now() + deadlineMs;
  for (;;) {
    const info = await qmp.execute<MigrationInfo>('query-migrate');
    if (info.status === 'completed') return info;
    if (info.status === 'failed' || info.status === 'cancelled') throw new Error(`the save ${info.status}${info['error-desc'] ? `: ${info['error-desc']}` : ''}`);
    if (performance.now() > until) {
      await qmp.execute('migrate_cancel').catch(() => {});
      throw new Error(`the save did not complete within ${deadlineMs / 1000} s (status ${info.status})`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Saves the running guest behind `qmp`, whose memory is the shared file `memoryFile`, as the
 * snapshot `key`, unless another run is saving it right now: the guest is paused, its device
 * state written and its memory copied, and resumed. Returns the entry, or null when another run
 * had it. The guest is running again when this returns or throws.
 */
export async function saveSnapshot(qmp: Qmp, memoryFile: string, key: string, bootConsole: string, deadlineMs: number, onProgress?: (m: string) => void): Promise<Snapshot | null> {
  const dir = await tryPublish({
    area: SNAPSHOT_AREA,
    key,
    onProgress,
    sparse: [MEMORY_FILE],
    build: async (tmp) => {
      const started = Date.now();
      await qmp.execute('stop');
      try {
        await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
        // The default bandwidth cap (32 MiB/s) is for live migration over a network.
        await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 2 ** 40 });
        await qmp.execute('migrate', { uri: `exec:cat > ${shq(join(tmp, DEVICES_FILE))}` });
        const info = await migrationDone(qmp, deadlineMs);
        // Paused, the memory file is what the device state goes with; holes stay holes.
        await execa(which('cp'), ['--sparse=always', memoryFile, join(tmp, MEMORY_FILE)]);
        await writeFile(join(tmp, BOOT_CONSOLE), bootConsole);
        return { pausedMs: Date.now() - started, devicesMs: info['total-time'], saved: new Date().toISOString() };
      } finally {
        await qmp.execute('cont');
      }
    },
  });
  if (!dir) return null;
  await pruneSnapshots(SNAPSHOT_UNUSED_MS, onProgress);
  return snapshotIn(key, dir);
}

/** What a save needs of the booting guest. */
export interface SaveFrom {
  /** The kernel's name, for messages. */
  kernel: string;
  /** What init said (its entropy line), and the console of the boot, kept with the snapshot. */
  console: ConsoleLog;
  /** The guest's QMP socket and shared memory file. */
  files: NonNullable<BootPlan['snapshot']>;
  running: () => boolean;
  /** How long the QMP connection, and then the save, may take (the boot's timeout). */
  deadlineMs: number;
  progress: (message: string) => void;
}

/**
 * Saves a booting guest as the snapshot `key` (init is ready for SSH, no connection made yet), when
 * its kernel can reseed its random generator on demand: a restored guest must not share its
 * random bytes with the others. A failed save is said and the boot goes on.
 */
export async function saveGuest(key: string, from: SaveFrom): Promise<void> {
  const entropy = from.console.guestSays.find((l) => l.startsWith('entropy:'));
  if (!canReseed(entropy)) {
    from.progress(`no guest snapshot of kernel ${from.kernel}: it cannot reseed its random generator on demand (init said "${entropy ?? 'nothing about entropy'}"), so its guests boot`);
    return;
  }
  const files = from.files;
  let qmp: Qmp | undefined;
  try {
    qmp = await Qmp.connect(files.qmp, from.deadlineMs, () => (from.running() ? null : 'QEMU exited'));
    const snap = await saveSnapshot(qmp, files.memoryFile.path, key, from.console.text(), from.deadlineMs, from.progress);
    if (snap) from.progress(`saved a guest snapshot of kernel ${from.kernel} (${snapshotSize(snap)}) in ${snap.dir}: later guests start from it`);
  } catch (e) {
    from.progress(`could not save a guest snapshot of kernel ${from.kernel}: ${(e as Error).message}`);
  } finally {
    qmp?.close();
  }
}
