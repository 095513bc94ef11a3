// Guests kept after a failing test (--keep-on-fail): a registry of small JSON files under the
// cache, one per guest, written by its keeper (harness/guest/keeper.mjs) and removed when it ends.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot } from '../base/cache.js';
import { pidAlive } from '../base/procs.js';

export interface KeptGuest {
  id: string;
  kernel: string;
  suite: string;
  test: string;
  sshPort: number;
  /** Paths of the client key and a known_hosts line for the guest. */
  keyPath: string;
  knownHosts: string;
  /** The guest's host key (base64). */
  hostKey: string;
  console: string;
  /** An OpenSSH command line that gets in. */
  ssh: string;
  registry: string;
  maxSeconds: number;
  keptAt: string;
  keeperPid?: number;
  qemuPid?: number;
}

export const keptDir = (): string => join(cacheRoot(), 'kept');


/** Kept guests whose keeper is alive. */
export function listKept(): KeptGuest[] {
  const dir = keptDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as KeptGuest)
    .filter((k) => pidAlive(k.keeperPid));
}

export function findKept(id: string): KeptGuest {
  const k = listKept().find((g) => g.id === id);
  if (!k) {
    const ids = listKept().map((g) => g.id);
    throw new Error(`no kept guest "${id}"${ids.length ? ` (kept now: ${ids.join(', ')})` : ' (none is kept now)'}`);
  }
  return k;
}

/** Ends a kept guest: its keeper kills QEMU and removes the registry entry. */
export async function stopKept(id: string): Promise<void> {
  const k = findKept(id);
  process.kill(k.keeperPid!, 'SIGTERM');
  const end = performance.now() + 10_000;
  while (performance.now() < end && (pidAlive(k.keeperPid) || pidAlive(k.qemuPid))) await new Promise((r) => setTimeout(r, 100));
  if (pidAlive(k.qemuPid)) process.kill(k.qemuPid!, 'SIGKILL');
}
