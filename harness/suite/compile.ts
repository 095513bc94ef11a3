// BPF C to object files: clang -target bpf with libbpf's headers, cached by content (the source,
// the headers next to it, the flags and the compiler's version). Also small C programs for the
// guest (a uprobe's target), built static on the host and cached the same way.
import { existsSync } from 'node:fs';
import { copyFile, readFile, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { cached, contentKey } from '../base/cache.js';
import { REPO_ROOT } from '../base/paths.js';
import { which } from '../base/tools.js';

/** Where compiled objects go in a guest. */
export const GUEST_OBJECT_DIR = '/run/bpf';

export class CompileError extends Error {
  constructor(
    readonly source: string,
    readonly output: string,
    compiler = 'clang',
  ) {
    super(`${compiler} could not compile ${source}:\n${output.trim()}`);
    this.name = 'CompileError';
  }
}

/** Headers shared by several suites (suites/include), reachable from every BPF source. */
export const SHARED_INCLUDE = join(REPO_ROOT, 'suites', 'include');

export const BPF_CFLAGS = ['-O2', '-g', '-Wall', '-Werror=implicit-function-declaration', '-target', 'bpf', '-D__TARGET_ARCH_x86', '-I/usr/include/x86_64-linux-gnu'];

let clangVersion: Promise<string> | undefined;
function compilerVersion(): Promise<string> {
  clangVersion ??= execa(which('clang'), ['--version']).then((r) => r.stdout);
  return clangVersion;
}

async function localHeaders(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith('.h')) out.push(join(dir, e.name));
  }
  return out.sort();
}

export interface CompiledObject {
  /** Path of the .o in the cache. */
  path: string;
  /** File name to use in the guest, e.g. xdp_drop.bpf.o. */
  name: string;
}

/** Compiles one .bpf.c file (extra -D flags allowed); returns the cached object. */
export async function compileBpf(source: string, extraFlags: string[] = []): Promise<CompiledObject> {
  if (!existsSync(source)) throw new Error(`BPF source ${source} does not exist`);
  const flags = [...BPF_CFLAGS, `-I${dirname(source)}`, `-I${SHARED_INCLUDE}`, ...extraFlags];
  // The key holds what decides the object (not the folder it sits in): compiler, flags, the
  // source and the headers beside it.
  const parts: string[] = [await compilerVersion(), [...BPF_CFLAGS, ...extraFlags].join(' '), basename(source), await readFile(source, 'utf8')];
  for (const dir of [dirname(source), SHARED_INCLUDE]) {
    for (const h of existsSync(dir) ? await localHeaders(dir) : []) parts.push(h.slice(dir.length), await readFile(h, 'utf8'));
  }
  const name = basename(source).replace(/\.c$/, '.o');
  const { dir } = await cached({
    area: 'objects',
    key: contentKey('bpf-object-v1', ...parts),
    build: async (tmp) => {
      const out = join(tmp, name);
      const r = await execa(which('clang'), [...flags, '-c', source, '-o', out], { reject: false, all: true });
      if (r.exitCode !== 0) throw new CompileError(source, r.all ?? '');
      return {};
    },
  });
  return { path: join(dir, name), name };
}

let ccVersion: Promise<string> | undefined;

/**
 * Compiles a C program for the guest on the host: static (the guest has only the image's
 * libraries) and with its symbol table (a uprobe finds its functions by name), cached by the
 * source, the flags and the compiler's version. Copy it in with `guest.ssh.put`.
 */
export async function compileProgram(source: string, flags: string[] = ['-O1']): Promise<CompiledObject> {
  if (!existsSync(source)) throw new Error(`C source ${source} does not exist`);
  ccVersion ??= execa(which('cc'), ['--version']).then((r) => r.stdout);
  const name = basename(source).replace(/\.c$/, '');
  const { dir } = await cached({
    area: 'objects',
    key: contentKey('guest-program-v1', await ccVersion, flags.join(' '), name, await readFile(source, 'utf8')),
    build: async (tmp) => {
      const r = await execa(which('cc'), [...flags, '-static', '-o', join(tmp, name), source], { reject: false, all: true });
      if (r.exitCode !== 0) throw new CompileError(source, r.all ?? '', 'cc');
      return {};
    },
  });
  return { path: join(dir, name), name };
}

/** Compiles every source and copies the objects into one directory (for a single tar into the guest). */
export async function compileAll(sources: string[], into: string): Promise<CompiledObject[]> {
  const objs = await Promise.all(sources.map((s) => compileBpf(s)));
  for (const o of objs) await copyFile(o.path, join(into, o.name));
  return objs;
}
