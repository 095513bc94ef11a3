// Content-keyed cache outside the repo: kernels, images, compiled objects, probe results.
// An entry is a directory published by an atomic rename, with a manifest of sha256 sums that is
// checked on every use; a lock file keeps two runs from building the same entry twice.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheRoot, config } from './config.js';
import { bootId, pidAlive, procStat } from './procs.js';

export { cacheRoot };

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * A file's identity as stat sees it: device, inode, size, and modification and change times to
 * the nanosecond. A write changes the change time, which no program can set back (git's index
 * trusts the same fields), so an unchanged stamp is an unchanged file.
 */
export async function statStamp(path: string): Promise<string> {
  const st = await stat(path, { bigint: true });
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

const SPARSE = 'sparse-sha256:';
const CHUNK = 1 << 20;

/**
 * A digest of a large sparse file (a guest's memory: 1 GiB of which a tenth is data) that hashes
 * only its chunks that are not all zeros, each with its offset and length, and the size: as
 * strong a check as sha256 of the whole file, at the cost of reading it and hashing the data.
 */
export async function sparseSha256File(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const h = createHash('sha256');
    const buf = Buffer.alloc(CHUNK);
    const zero = Buffer.alloc(CHUNK);
    for (let off = 0; off < size; off += CHUNK) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, off);
      const b = buf.subarray(0, bytesRead);
      if (b.equals(zero.subarray(0, bytesRead))) continue;
      h.update(`${off}:${bytesRead}:`);
      h.update(b);
    }
    h.update(`size:${size}`);
    return SPARSE + h.digest('hex');
  } finally {
    await fh.close();
  }
}

const digests = new Map<string, { stamp: string; sum: string }>();

/**
 * A file's digest (plain sha256, or the sparse kind), read once per process and again only when
 * its stat stamp changed: every guest start keys its image by the programs, libraries and modules
 * it takes and checks the cache entries they come from, and reading them all again cost a start
 * half a second on a quiet host and 1-2 s on a busy one.
 */
async function stampedDigest(path: string, sparse: boolean): Promise<string> {
  const stamp = await statStamp(path);
  const memo = `${sparse ? 'sparse' : 'plain'}:${path}`;
  const known = digests.get(memo);
  if (known?.stamp === stamp) return known.sum;
  const sum = sparse ? await sparseSha256File(path) : await sha256File(path);
  // Kept only when the file did not change while it was read.
  if ((await statStamp(path)) === stamp) digests.set(memo, { stamp, sum });
  return sum;
}

/** sha256File of an input a key is made from, remembered while the file is unchanged (stampedDigest). */
export const inputSha256 = (path: string): Promise<string> => stampedDigest(path, false);

/** The digest a manifest keeps for a file: plain sha256, or the sparse kind for files named so. */
async function fileDigest(path: string, sparse: boolean): Promise<string> {
  return stampedDigest(path, sparse);
}

/** A stable key from parts (strings or buffers), short enough for a directory name. */
export function contentKey(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(String(Buffer.byteLength(p)) + ':');
    h.update(p);
  }
  return h.digest('hex').slice(0, 24);
}

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
const LOCK_WAIT_MS = () => config.lockWaitSeconds.get() * 1000;

async function lock(path: string, waitingFor: string, onWait?: (msg: string) => void): Promise<() => Promise<void>>;
async function lock(path: string, waitingFor: string, onWait: ((msg: string) => void) | undefined, wait: false): Promise<(() => Promise<void>) | null>;
async function lock(path: string, waitingFor: string, onWait?: (msg: string) => void, wait = true): Promise<(() => Promise<void>) | null> {
  let told = false;
  const giveUp = Date.now() + LOCK_WAIT_MS();
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
    if (Date.now() > giveUp) {
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
