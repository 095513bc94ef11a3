import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { CompileError, compileBpf } from '../../harness/suite/compile.js';

const GOOD = `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int pass(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
`;

test('a BPF source compiles to a BPF ELF object, cached by content', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'compile-'));
  await writeFile(join(dir, 'ok.bpf.c'), GOOD);
  const a = await compileBpf(join(dir, 'ok.bpf.c'));
  const elf = await readFile(a.path);
  expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
  expect(elf.readUInt16LE(18)).toBe(247); // e_machine EM_BPF
  expect(a.name).toBe('ok.bpf.o');
  // Same content elsewhere: the same cache entry.
  const dir2 = await mkdtemp(join(tmpdir(), 'compile-'));
  await writeFile(join(dir2, 'ok.bpf.c'), GOOD);
  expect((await compileBpf(join(dir2, 'ok.bpf.c'))).path).toBe(a.path);
  // A change to a header next to the source is a new entry.
  await writeFile(join(dir2, 'extra.h'), '#define X 1\n');
  expect((await compileBpf(join(dir2, 'ok.bpf.c'))).path).not.toBe(a.path);
});

test("a compile error carries clang's own message", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'compile-'));
  await writeFile(join(dir, 'bad.bpf.c'), GOOD.replace('return XDP_PASS;', 'return undefined_thing;'));
  const err = await compileBpf(join(dir, 'bad.bpf.c')).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CompileError);
  expect((err as Error).message).toMatch(/bad\.bpf\.c:3:\d+: error: use of undeclared identifier 'undefined_thing'/);
});
