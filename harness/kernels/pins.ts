// kernels/lock.json pins each Debian catalog kernel to one exact package, version and checksum,
// so that every run (a laptop, CI, a colleague next year) boots the same kernel. `npm run
// kernels -- lock [NAME...]` moves pins to the newest packages the archive serves.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isObject, readJsonFile } from '../base/json-file.js';
import { REPO_ROOT } from '../base/paths.js';

export interface Pin {
  /** The catalog entry it was resolved from (a changed entry ignores a stale pin). */
  suite: string;
  from: string;
  package: string;
  version: string;
  sha256: string;
}

export const LOCK_PATH = join(REPO_ROOT, 'kernels', 'lock.json');

export function readLock(path = LOCK_PATH): Record<string, Pin> {
  if (!existsSync(path)) return {};
  return readJsonFile<Record<string, Pin>>(path, (v) =>
    isObject(v) && Object.values(v).every((p) => isObject(p) && typeof p.package === 'string' && typeof p.version === 'string')
      ? null
      : 'not a kernel lock: each entry needs a package and a version (npm run kernels -- lock rewrites it)',
  );
}

export function writePin(name: string, pin: Pin, path = LOCK_PATH): void {
  const lock = readLock(path);
  lock[name] = pin;
  const sorted = Object.fromEntries(Object.entries(lock).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(path, JSON.stringify(sorted, null, 2) + '\n');
}
