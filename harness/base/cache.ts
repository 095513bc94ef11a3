// Content-keyed cache outside the repo: kernels, images, compiled objects, probe results.
// An entry is a directory published by an atomic rename, with a manifest of sha256 sums that is
// checked on every use (digest.ts); a lock file keeps two runs from building the same entry twice.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheRoot } from './config.js';
import { fileDigest, SPARSE } from './digest.js';
import { lock } from './file-lock.js';
import { bootId, pidAlive } from './procs.js';

export { cacheRoot };

export { contentKey, inputSha256, sha256, sha256File, sparseSha256File, statStamp } from './digest.js';

const MANIFEST = '.manifest.json';

interface Manifest {
  key: string;
  created: string;
  files: Record<string, string>;
  meta?: unknown;
}

async function* walk(dir: string, prefix = ''): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) yield* walk(join(dir, e.name), rel);
    else if (e.isFile() && rel !== MANIFEST) yield rel;
  }
}

async function writeManifest(dir: string, key: string, meta: unknown, sparse: readonly string[] = []): Promise<void> {
  const files: Record<string, string> = {};
  for await (const rel of walk(dir)) files[rel] = await fileDigest(join(dir, rel), sparse.includes(rel));
  const m: Manifest = { key, created: new Date().toISOString(), files, meta };
  await writeFile(join(dir, MANIFEST), JSON.stringify(m, null, 1));
}

/** Checks every file against the manifest; `only` limits the check to some files (large trees). */
export async function verifyEntry(dir: string, only?: string[]): Promise<string | null> {
  let m: Manifest;
  try {
    m = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8'));
  } catch {
    return 'no manifest';
  }
  const names = only ?? Object.keys(m.files);
  for (const rel of names) {
    const want = m.files[rel];
    if (!want) return `${rel} missing from manifest`;
    if (!existsSync(join(dir, rel))) return `${rel} missing`;
    if ((await fileDigest(join(dir, rel), want.startsWith(SPARSE))) !== want) return `${rel} does not match its checksum`;
  }
  return null;
}

export async function entryMeta<T>(dir: string): Promise<T> {
  return (JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Manifest).meta as T;
}

export { holderAlive, lockIdentity, withLock } from './file-lock.js';

/**
 * Removes temporary build directories (`KEY.tmp-PID-HEX`) of an area whose builder is gone: a run
 * killed mid-build leaves them, and they can be large.
 */
export async function sweepAbandoned(areaDir: string, say?: (m: string) => void): Promise<string[]> {
  const removed: string[] = [];
  for (const e of await readdir(areaDir).catch(() => [] as string[])) {
    const m = /\.tmp-(\d+)-[0-9a-f]+$/.exec(e);
    if (!m) continue;
    if (pidAlive(Number(m[1]))) continue;
    say?.(`cache: removing ${join(areaDir, e)}, left by a run that was killed`);
    await rm(join(areaDir, e), { recursive: true, force: true });
    removed.push(e);
  }
  return removed;
}

export interface CachedOptions<M> {
  /** Cache area, e.g. "kernels", "images", "objects". */
  area: string;
  key: string;
  /** Builds the entry into `dir` (a fresh temporary directory) and returns metadata to keep. */
  build: (dir: string) => Promise<M>;
  /**
   * Files to verify on each use (default: all). Use a short list for large trees, or a function
   * of the entry's directory that names the files a user of the entry reads.
   */
  verify?: string[] | ((dir: string) => Promise<string[]>);
  onProgress?: (msg: string) => void;
}

/**
 * An entry's directory, with its area made and swept of what killed runs left. The cache holds
 * the guests' SSH keys: only its owner may read it.
 */
async function entryDir(area: string, key: string, onProgress?: (msg: string) => void): Promise<string> {
  await mkdir(cacheRoot(), { recursive: true, mode: 0o700 });
  await chmod(cacheRoot(), 0o700);
  const areaDir = join(cacheRoot(), area);
  await mkdir(areaDir, { recursive: true });
  await sweepAbandoned(areaDir, onProgress);
  return join(areaDir, key);
}

/**
 * Builds an entry into a fresh temporary directory beside `dir`, writes its manifest and renames
 * it into place (the caller holds the entry's lock); nothing is left behind when `build` fails.
 */
async function publish<M>(dir: string, key: string, build: (tmp: string) => Promise<M>, sparse?: readonly string[]): Promise<M> {
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(tmp, { recursive: true });
  try {
    const meta = await build(tmp);
    await writeManifest(tmp, key, meta, sparse);
    await rename(tmp, dir);
    return meta;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Returns the directory of a verified cache entry, building it first when it is missing or
 * corrupt. Safe for concurrent runs: one builds, the others wait and reuse the result.
 */
export async function cached<M>(opts: CachedOptions<M>): Promise<{ dir: string; meta: M; built: boolean }> {
  const dir = await entryDir(opts.area, opts.key, opts.onProgress);
  const check = async () => {
    if (!existsSync(dir)) return false;
    const only = typeof opts.verify === 'function' ? await opts.verify(dir).catch(() => null) : opts.verify;
    return only !== null && (await verifyEntry(dir, only)) === null;
  };
  if (await check()) return { dir, meta: await entryMeta<M>(dir), built: false };
  const release = await lock(`${dir}.lock`, `${opts.area}/${opts.key}`, opts.onProgress);
  try {
    if (await check()) return { dir, meta: await entryMeta<M>(dir), built: false };
    if (existsSync(dir)) {
      opts.onProgress?.(`cache entry ${opts.area}/${opts.key} failed verification; rebuilding`);
      await rm(dir, { recursive: true, force: true });
    }
    const meta = await publish(dir, opts.key, opts.build);
    return { dir, meta, built: true };
  } finally {
    await release();
  }
}

/**
 * Verified entries, by directory, with the size, modification time and inode of each of their
 * files then: an entry handed out by existingEntry is checked against its manifest once per host
 * boot (a file beside it, KEY.verified-BOOTID, keeps the signature for other processes), not on
 * every use (a guest snapshot holds 100 MB of data, and every start of a guest would read it),
 * and again whenever any of its files changed since.
 */
const verifiedHere = new Map<string, string>();
const verifiedMark = (dir: string) => `${dir}.verified-${bootId()}`;

async function entrySignature(dir: string): Promise<string | null> {
  try {
    const m = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Manifest;
    const parts = [m.created];
    for (const rel of Object.keys(m.files).sort()) {
      const st = await stat(join(dir, rel));
      parts.push(`${rel}:${st.size}:${st.mtimeMs}:${st.ino}`);
    }
    return parts.join('|');
  } catch {
    return null;
  }
}

/**
 * The directory of an existing cache entry when it verifies, else null. A corrupt entry is
 * removed (and `onProgress` says why), so that the next writer can publish a good one.
 */
export async function existingEntry(area: string, key: string, onProgress?: (msg: string) => void): Promise<string | null> {
  const dir = join(cacheRoot(), area, key);
  if (!existsSync(join(dir, MANIFEST))) return null;
  const signature = await entrySignature(dir);
  if (signature !== null && verifiedHere.get(dir) === signature) return dir;
  if (signature !== null && (await readFile(verifiedMark(dir), 'utf8').catch(() => null)) === signature) {
    verifiedHere.set(dir, signature);
    return dir;
  }
  const bad = await verifyEntry(dir);
  if (bad === null && signature !== null) {
    verifiedHere.set(dir, signature);
    const tmp = `${verifiedMark(dir)}.tmp-${process.pid}`;
    await writeFile(tmp, signature).then(() => rename(tmp, verifiedMark(dir))).catch(() => rm(tmp, { force: true }));
    return dir;
  }
  onProgress?.(`cache entry ${area}/${key} failed verification (${bad ?? 'its files changed while it was checked'}); removing it`);
  await removeEntry(area, key);
  return null;
}

/** Removes an entry (under its lock when nobody holds it; a holder is publishing a new one). */
export async function removeEntry(area: string, key: string): Promise<void> {
  const dir = join(cacheRoot(), area, key);
  verifiedHere.delete(dir);
  const release = await lock(`${dir}.lock`, `${area}/${key}`, undefined, false);
  if (!release) return;
  try {
    await rm(dir, { recursive: true, force: true });
    const area_ = join(cacheRoot(), area);
    for (const e of await readdir(area_).catch(() => [] as string[])) if (e.startsWith(`${key}.verified-`)) await rm(join(area_, e), { force: true });
  } finally {
    await release();
  }
}

/**
 * Publishes an entry that `build` writes into a fresh temporary directory, unless it exists
 * already or another run is publishing it right now: then it returns null at once, without
 * waiting (for work that is worth doing only when nobody else is, such as saving a guest).
 */
export async function tryPublish<M>(opts: {
  area: string;
  key: string;
  build: (dir: string) => Promise<M>;
  /** Files (relative) that are large and mostly holes: kept with the sparse digest. */
  sparse?: string[];
  onProgress?: (msg: string) => void;
}): Promise<string | null> {
  const dir = await entryDir(opts.area, opts.key, opts.onProgress);
  if (existsSync(join(dir, MANIFEST))) return null;
  const release = await lock(`${dir}.lock`, `${opts.area}/${opts.key}`, opts.onProgress, false);
  if (!release) return null;
  try {
    if (existsSync(join(dir, MANIFEST))) return null;
    await rm(dir, { recursive: true, force: true });
    await publish(dir, opts.key, opts.build, opts.sparse);
    return dir;
  } finally {
    await release();
  }
}
