// The kernel a guest boots: a kernel with a PVH entry point (CONFIG_PVH) boots as the
// uncompressed ELF inside its bzImage, which QEMU enters directly. That skips the decompressor
// and the real-mode setup: 0.2 s under TCG for Debian's LZ4 kernels, 0.5 s for its zstd ones.
// The kernel that runs is the same code; a bzImage without the entry point boots as it is.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { cached, contentKey } from '../base/cache.js';
import { type Tool, which } from '../base/tools.js';

/** The compressed payload of a bzImage (boot protocol 2.08+), with its format. */
export interface Payload {
  format: 'gzip' | 'xz' | 'zstd' | 'lz4' | 'other';
  /** The compressed stream: gzip's own trailer ends in the size; the other formats' builds append it. */
  data: Buffer;
  /** The uncompressed size, from those 4 bytes. */
  size: number;
}

const MAGICS: [Payload['format'], number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['lz4', [0x02, 0x21, 0x4c, 0x18]],
];

/** Reads the payload the setup header points to; null for an image that is not a bzImage. */
export function bzImagePayload(image: Buffer): Payload | null {
  if (image.length < 0x250 || image.toString('latin1', 0x202, 0x206) !== 'HdrS' || image.readUInt16LE(0x206) < 0x208) return null;
  const setupSects = image[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + image.readUInt32LE(0x248);
  const length = image.readUInt32LE(0x24c);
  if (length < 8 || start + length > image.length) return null;
  const all = image.subarray(start, start + length);
  const format = MAGICS.find(([, m]) => m.every((b, i) => all[i] === b))?.[0] ?? 'other';
  return { format, data: format === 'gzip' ? all : all.subarray(0, length - 4), size: all.readUInt32LE(length - 4) };
}

const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/** Whether an ELF64 image carries Xen's PHYS32_ENTRY note, the PVH entry point QEMU looks for. */
export function hasPvhNote(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > elf.length || elf.readUInt32LE(ph) !== 4 /* PT_NOTE */) continue;
    let off = Number(elf.readBigUInt64LE(ph + 8));
    const end = off + Number(elf.readBigUInt64LE(ph + 32));
    while (off + 12 <= end && end <= elf.length) {
      const namesz = elf.readUInt32LE(off);
      const descsz = elf.readUInt32LE(off + 4);
      const type = elf.readUInt32LE(off + 8);
      const name = elf.toString('latin1', off + 12, off + 12 + Math.max(0, namesz - 1));
      if (name === 'Xen' && type === XEN_ELFNOTE_PHYS32_ENTRY) return true;
      off += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return false;
}

/** The tool that unpacks each format. */
const UNPACKERS: { format: Payload['format']; tool: Tool }[] = [
  { tool: 'gzip', format: 'gzip' },
  { tool: 'xz', format: 'xz' },
  { tool: 'zstd', format: 'zstd' },
  { tool: 'lz4', format: 'lz4' },
];

interface PvhMeta {
  /** Why the bzImage boots as it is; absent when vmlinux is there. */
  none?: string;
}

const memo = new Map<string, Promise<string>>();

/**
 * The file QEMU's -kernel should get for this bzImage: the PVH vmlinux (cached by the bzImage's
 * content, verified once per process), or the bzImage itself.
 */
export async function bootKernel(bzImage: string, say?: (m: string) => void): Promise<string> {
  // A bzImage rebuilt in place (a user's own build) is a new key.
  const { mtimeMs, size } = await stat(bzImage);
  const key = `${bzImage}\0${mtimeMs}\0${size}`;
  let p = memo.get(key);
  if (!p) {
    p = resolve(bzImage, say).catch((e) => {
      memo.delete(key);
      throw e;
    });
    memo.set(key, p);
  }
  return p;
}

async function resolve(bzImage: string, say?: (m: string) => void): Promise<string> {
  const image = await readFile(bzImage);
  const payload = bzImagePayload(image);
  const tool = UNPACKERS.find((u) => u.format === payload?.format)?.tool;
  if (!payload || !tool) return bzImage;
  try {
    which(tool);
  } catch (e) {
    say?.(`${(e as Error).message}; until then the guest boots its bzImage, which takes longer`);
    return bzImage;
  }
  const entry = await cached<PvhMeta>({
    area: 'pvh',
    key: contentKey(image),
    onProgress: say,
    build: async (dir) => {
      const r = await execa(which(tool), ['-dc'], { input: payload.data, encoding: 'buffer', stripFinalNewline: false, maxBuffer: 1 << 30, reject: false });
      if (r.exitCode !== 0) throw new Error(`${bzImage}: ${tool} -dc of its ${payload.format} payload failed: ${Buffer.from(r.stderr).toString().trim()}`);
      const elf = Buffer.from(r.stdout);
      if (elf.length !== payload.size) throw new Error(`${bzImage}: ${tool} unpacked ${elf.length} bytes where the image says ${payload.size}`);
      if (!hasPvhNote(elf)) return { none: 'the kernel has no PVH entry point (CONFIG_PVH)' };
      await writeFile(join(dir, 'vmlinux'), elf);
      return {};
    },
  });
  return entry.meta.none ? bzImage : join(entry.dir, 'vmlinux');
}
