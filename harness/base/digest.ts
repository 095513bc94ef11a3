// Digests: of data, of files (plain sha256, or a sparse file's data chunks), and content keys made
// of parts; a file's digest is kept per process while its stat stamp is unchanged.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';

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

/** How a manifest marks a sparse file's digest. */
export const SPARSE = 'sparse-sha256:';
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
 * A file's digest as a manifest keeps it (plain sha256, or the sparse kind), read once per process and again only when
 * its stat stamp changed: every guest start keys its image by the programs, libraries and modules
 * it takes and checks the cache entries they come from, and reading them all again cost a start
 * half a second on a quiet host and 1-2 s on a busy one.
 */
export async function fileDigest(path: string, sparse: boolean): Promise<string> {
  const stamp = await statStamp(path);
  const memo = `${sparse ? 'sparse' : 'plain'}:${path}`;
  const known = digests.get(memo);
  if (known?.stamp === stamp) return known.sum;
  const sum = sparse ? await sparseSha256File(path) : await sha256File(path);
  // Kept only when the file did not change while it was read.
  if ((await statStamp(path)) === stamp) digests.set(memo, { stamp, sum });
  return sum;
}

/** sha256File of an input a key is made from, remembered while the file is unchanged (fileDigest). */
export const inputSha256 = (path: string): Promise<string> => fileDigest(path, false);

/** A stable key from parts (strings or buffers), short enough for a directory name. */
export function contentKey(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(String(Buffer.byteLength(p)) + ':');
    h.update(p);
  }
  return h.digest('hex').slice(0, 24);
}
