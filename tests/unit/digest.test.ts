// The sparse digest of a guest's memory file: the same sum as hashing every chunk of the file that
// is not all zeros, while reading only the chunks its data extents touch.
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { dataExtents, SPARSE, sparseSha256File } from '../../harness/base/digest.js';

const MiB = 1 << 20;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'digest-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The definition: every 1 MiB chunk read, the ones that are all zeros left out. */
async function everyChunk(path: string): Promise<string> {
  const data = await readFile(path);
  const h = createHash('sha256');
  const zero = Buffer.alloc(MiB);
  for (let off = 0; off < data.length; off += MiB) {
    const b = data.subarray(off, off + MiB);
    if (b.equals(zero.subarray(0, b.length))) continue;
    h.update(`${off}:${b.length}:`);
    h.update(b);
  }
  h.update(`size:${data.length}`);
  return SPARSE + h.digest('hex');
}

/** A file of `size` bytes with `writes` ([offset, bytes]) and holes elsewhere. */
async function sparseFile(name: string, size: number, writes: [number, Buffer][]): Promise<string> {
  const path = join(dir, name);
  const fh = await open(path, 'w');
  await fh.truncate(size);
  for (const [off, b] of writes) await fh.write(b, 0, b.length, off);
  await fh.close();
  return path;
}

test('the sparse digest is the sum of every chunk that is not all zeros: data across a chunk edge, written zeros, a short last chunk', async () => {
  const path = await sparseFile('memory', 64 * MiB + 4096 + 17, [
    [10 * MiB - 100, Buffer.alloc(300, 0xab)],
    [20 * MiB, Buffer.alloc(2 * MiB, 0)],
    [40 * MiB + 5, Buffer.from('bpf-harness')],
    [64 * MiB + 4096, Buffer.alloc(17, 1)],
  ]);
  expect(await sparseSha256File(path)).toBe(await everyChunk(path));
  // A byte changed in a chunk the extents touch changes the sum.
  const fh = await open(path, 'r+');
  await fh.write(Buffer.from([0xac]), 0, 1, 10 * MiB - 100);
  await fh.close();
  expect(await sparseSha256File(path)).toBe(await everyChunk(path));
});

test('only the data is read: the extents cover what was written and leave the holes out', async (ctx) => {
  const path = await sparseFile('holes', 96 * MiB, [
    [3 * MiB, Buffer.alloc(8192, 7)],
    [90 * MiB, Buffer.alloc(4096, 9)],
  ]);
  const st = await stat(path);
  if (st.blocks * 512 >= st.size) ctx.skip(`the filesystem of ${tmpdir()} keeps no holes: the file is stored whole`);
  const extents = await dataExtents(path);
  expect(extents).not.toBeNull();
  const covers = (off: number, len: number) => extents!.some(([s, e]) => s <= off && off + len <= e);
  expect(covers(3 * MiB, 8192), JSON.stringify(extents)).toBe(true);
  expect(covers(90 * MiB, 4096), JSON.stringify(extents)).toBe(true);
  const dataBytes = extents!.reduce((n, [s, e]) => n + e - s, 0);
  expect(dataBytes).toBeLessThan(4 * MiB);
  expect(await sparseSha256File(path)).toBe(await everyChunk(path));
});

test('a file with no data at all has no extents and the sum of its size alone', async () => {
  const path = await sparseFile('empty', 8 * MiB, []);
  expect(await sparseSha256File(path)).toBe(await everyChunk(path));
});
