// The PVH boot path: the payload of a bzImage is found from its setup header, unpacked, checked
// against the size the image records and for the PVH entry note, and cached.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bootKernel, bzImagePayload, hasPvhNote } from '../../harness/guest/pvh.js';
import { overrideSettings } from '../../harness/base/config.js';

/** An ELF64 with one PT_NOTE segment holding one note (name, type). */
function elf(note: { name: string; type: number } | null, padding = 4096): Buffer {
  const name = note ? Buffer.from(`${note.name}\0`) : Buffer.alloc(0);
  const namePadded = Buffer.concat([name, Buffer.alloc((4 - (name.length % 4)) % 4)]);
  const desc = Buffer.alloc(4, 0x11);
  const noteBytes = note ? Buffer.concat([u32(name.length), u32(desc.length), u32(note.type), namePadded, desc]) : Buffer.alloc(0);
  const h = Buffer.alloc(64);
  h.writeUInt32BE(0x7f454c46, 0);
  h[4] = 2; // 64-bit
  h[5] = 1; // little endian
  h.writeBigUInt64LE(64n, 0x20); // phoff
  h.writeUInt16LE(56, 0x36); // phentsize
  h.writeUInt16LE(1, 0x38); // phnum
  const ph = Buffer.alloc(56);
  ph.writeUInt32LE(4, 0); // PT_NOTE
  ph.writeBigUInt64LE(BigInt(64 + 56), 8); // offset
  ph.writeBigUInt64LE(BigInt(noteBytes.length), 32); // filesz
  return Buffer.concat([h, ph, noteBytes, Buffer.alloc(padding, 0x90)]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** A bzImage of boot protocol 2.15 whose setup header points at `payload`. */
function bzImage(payload: Buffer): Buffer {
  const setupSects = 3;
  const setup = Buffer.alloc((setupSects + 1) * 512);
  setup[0x1f1] = setupSects;
  setup.write('HdrS', 0x202, 'latin1');
  setup.writeUInt16LE(0x20f, 0x206);
  const lead = Buffer.alloc(256, 0xcc); // the decompressor's code before the payload
  setup.writeUInt32LE(lead.length, 0x248);
  setup.writeUInt32LE(payload.length, 0x24c);
  return Buffer.concat([setup, lead, payload, Buffer.alloc(64, 0xcc)]);
}

const gzipPayload = (data: Buffer) => gzipSync(data); // gzip's trailer holds the size already

describe('reading a bzImage', () => {
  test('the PVH entry note is found, and only that note', () => {
    expect(hasPvhNote(elf({ name: 'Xen', type: 18 }))).toBe(true);
    expect(hasPvhNote(elf({ name: 'Xen', type: 17 }))).toBe(false);
    expect(hasPvhNote(elf({ name: 'GNU', type: 18 }))).toBe(false);
    expect(hasPvhNote(elf(null))).toBe(false);
    expect(hasPvhNote(Buffer.from('not an elf at all, but long enough to have a header............'))).toBe(false);
  });

  test('the payload comes from the setup header, with its format and size', () => {
    const kernel = elf({ name: 'Xen', type: 18 });
    const p = bzImagePayload(bzImage(gzipPayload(kernel)))!;
    expect(p.format).toBe('gzip');
    expect(p.size).toBe(kernel.length);
    // A zstd payload (magic only here): the build's 4-byte size is cut off the stream.
    const zstdLike = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]), u32(123456)]);
    const z = bzImagePayload(bzImage(zstdLike))!;
    expect([z.format, z.size, z.data.length]).toEqual(['zstd', 123456, 7]);
    expect(bzImagePayload(Buffer.alloc(4096))).toBeNull();
  });
});

describe('bootKernel', () => {
  let dir: string;
  let restore = () => {};
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pvh-test-'));
    restore = overrideSettings({ cache: join(dir, 'cache') });
  });
  afterAll(() => {
    restore();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a kernel with the PVH note boots as its unpacked ELF, byte for byte', async () => {
    const kernel = elf({ name: 'Xen', type: 18 });
    const path = join(dir, 'pvh-bzImage');
    writeFileSync(path, bzImage(gzipPayload(kernel)));
    const boot = await bootKernel(path);
    expect(boot).not.toBe(path);
    expect(readFileSync(boot).equals(kernel)).toBe(true);
  });

  test('a kernel without it boots as the bzImage', async () => {
    const path = join(dir, 'plain-bzImage');
    writeFileSync(path, bzImage(gzipPayload(elf(null))));
    expect(await bootKernel(path)).toBe(path);
  });

  test('an lz4 payload (the build appends its size) unpacks, and a wrong size is an error', async () => {
    const kernel = elf({ name: 'Xen', type: 18 }, 100_000);
    const { stdout } = await execa('lz4', ['-l', '-c'], { input: kernel, encoding: 'buffer' });
    const stream = Buffer.from(stdout);
    const good = join(dir, 'lz4-bzImage');
    writeFileSync(good, bzImage(Buffer.concat([stream, u32(kernel.length)])));
    expect(readFileSync(await bootKernel(good)).equals(kernel)).toBe(true);
    const bad = join(dir, 'lz4-bad-bzImage');
    writeFileSync(bad, bzImage(Buffer.concat([stream, u32(kernel.length + 1)])));
    await expect(bootKernel(bad)).rejects.toThrow(`lz4 unpacked ${kernel.length} bytes where the image says ${kernel.length + 1}`);
  });
});
