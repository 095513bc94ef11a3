// Digests: of data, of files (plain sha256, or a sparse file's data chunks), and content keys made
// of parts; a file's digest is kept per process while its stat stamp is unchanged.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

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

// lseek(SEEK_DATA) and lseek(SEEK_HOLE) (3 and 4 on Linux) from offset 0 on, through Perl's
// sysseek, which hands the whence to lseek as it is (Node.js has no lseek; perl-base is Essential
// on Debian). A filesystem without holes answers with the whole file as data.
const EXTENTS_PL = 'open(my $f, "<", $ARGV[0]) or die "$!\n"; my $s = -s $f; my $p = 0; while ($p < $s) { my $d = sysseek($f, $p, 3); last unless defined $d; my $h = sysseek($f, $d, 4); die "SEEK_HOLE: $!\n" unless defined $h; print "$d $h\n"; $p = $h; }';

/**
 * The byte ranges [start, end) of a file that hold data, as the filesystem keeps them: what lies
 * between them is a hole, which reads as zeros. Null when they cannot be told (no perl), and the
 * file is then read whole.
 */
export async function dataExtents(path: string): Promise<[number, number][] | null> {
  try {
    const { stdout } = await promisify(execFile)('perl', ['-e', EXTENTS_PL, path]);
    return stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ').map(Number) as [number, number]);
  } catch {
    return null;
  }
}

/** The CHUNK-aligned offsets of the chunks that overlap the extents (all of them when unknown). */
function chunksOf(size: number, extents: [number, number][] | null): number[] {
  if (!extents) return Array.from({ length: Math.ceil(size / CHUNK) }, (_, i) => i * CHUNK);
  const offs = new Set<number>();
  for (const [start, end] of extents) for (let off = Math.floor(start / CHUNK) * CHUNK; off < Math.min(end, size); off += CHUNK) offs.add(off);
  return [...offs].sort((a, b) => a - b);
}

/**
 * A digest of a large sparse file (a guest's memory: 1 GiB of which a tenth is data) that hashes
 * only its chunks that are not all zeros, each with its offset and length, and the size: as
 * strong a check as sha256 of the whole file, at the cost of hashing the data. Only the chunks
 * that overlap the file's data extents are read: a chunk wholly in a hole is all zeros, and
 * reading a hole costs the kernel a zeroed page-cache page for each of its pages (on a fresh
 * machine 8 s of CPU for a 1 GiB guest's memory, against 0.3 s for its data).
 */
export async function sparseSha256File(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const h = createHash('sha256');
    const buf = Buffer.alloc(CHUNK);
    const zero = Buffer.alloc(CHUNK);
    for (const off of chunksOf(size, await dataExtents(path))) {
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
