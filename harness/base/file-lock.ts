// Lock files that two runs (or two processes of one run) take before they build or change shared
// state: created exclusively, naming their holder by pid, boot id and start time, so that a lock
// whose holder is gone is taken over, and one held too long is given up on with its path.
import { open, readFile, rm, stat } from 'node:fs/promises';
import { settings } from './config.js';
import { bootId, procStat } from './procs.js';

/**
 * Who holds a lock: pid, the host's boot id and the process's start time (from /proc), so that a
 * pid reused by an unrelated process, or a lock file from another boot (a cache kept across CI
 * containers), is not taken for a live holder.
 */
export function lockIdentity(pid = process.pid): string {
  return `${pid} ${bootId()} ${procStat(pid)?.start ?? '?'}`;
}

/** True when the identity in a lock file names a process that is alive now. */
export function holderAlive(identity: string): boolean {
  const [pid, boot, start] = identity.trim().split(' ');
  if (!pid || !Number(pid)) return false;
  if (boot !== bootId()) return false;
  const now = procStat(Number(pid))?.start;
  return now !== undefined && (start === '?' || now === start);
}

/** How long a run waits for another to finish building an entry before it gives up. */
const LOCK_WAIT_MS = () => settings().lockWaitSeconds * 1000;

export async function lock(path: string, waitingFor: string, onWait?: (msg: string) => void): Promise<() => Promise<void>>;
export async function lock(path: string, waitingFor: string, onWait: ((msg: string) => void) | undefined, wait: false): Promise<(() => Promise<void>) | null>;
export async function lock(path: string, waitingFor: string, onWait?: (msg: string) => void, wait = true): Promise<(() => Promise<void>) | null> {
  let told = false;
  const giveUp = performance.now() + LOCK_WAIT_MS();
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(lockIdentity());
      await fh.close();
      return () => rm(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = (await readFile(path, 'utf8').catch(() => '')).trim();
    if (holder && !holderAlive(holder)) {
      onWait?.(`removing the stale lock ${path} (its holder, "${holder}", is gone)`);
      await rm(path, { force: true });
      continue;
    }
    if (!holder) {
      // Being written right now, or left empty by a crash: treat as stale after a while.
      const age = await stat(path).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > 10_000) await rm(path, { force: true });
    }
    if (!wait) return null;
    if (performance.now() > giveUp) {
      throw new Error(
        `gave up after ${LOCK_WAIT_MS() / 1000} s waiting for the lock ${path} (held by "${holder}": pid, boot id, start time) while building ${waitingFor}; remove the file if that process is not a bpf-harness run (BPF_HARNESS_LOCK_WAIT_SECONDS sets the wait)`,
      );
    }
    if (!told) onWait?.(`waiting for another run (pid ${holder.split(' ')[0] || '?'}) building ${waitingFor}; lock ${path}`);
    told = true;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Runs `fn` holding the lock file `path` (the same locks cache entries use), for any shared state. */
export async function withLock<T>(path: string, what: string, fn: () => Promise<T>, onWait?: (msg: string) => void): Promise<T> {
  const release = await lock(path, what, onWait);
  try {
    return await fn();
  } finally {
    await release();
  }
}
