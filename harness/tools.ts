// Host tools the harness runs, each with the Debian package that provides it, so that a missing
// tool is one line that says what to install.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { system } from './config.js';

export const TOOLS = {
  'qemu-system-x86_64': 'qemu-system-x86',
  clang: 'clang',
  'llvm-strip': 'llvm',
  cc: 'gcc',
  make: 'make',
  cpio: 'cpio',
  depmod: 'kmod',
  'dpkg-deb': 'dpkg',
  'apt-get': 'apt',
  'apt-cache': 'apt',
  dropbearkey: 'dropbear-bin',
  dropbear: 'dropbear-bin',
  busybox: 'busybox-static',
  ldd: 'libc-bin',
  setpriv: 'util-linux',
  ip: 'iproute2',
  tc: 'iproute2',
  // vmlinux.h for CO-RE programs, from a guest's BTF (harness/btf.ts).
  bpftool: 'bpftool',
  // Kernel source builds (harness/build.ts).
  flex: 'flex',
  bison: 'bison',
  bc: 'bc',
  perl: 'perl',
} as const;

export type Tool = keyof typeof TOOLS;

/** Files (not commands) the harness needs, with their package. */
export const FILES: Record<string, string> = {
  '/usr/lib/x86_64-linux-gnu/libbpf.a': 'libbpf-dev',
  '/usr/include/bpf/bpf_helpers.h': 'libbpf-dev',
  '/usr/lib/x86_64-linux-gnu/libelf.a': 'libelf-dev',
  '/usr/lib/x86_64-linux-gnu/libz.a': 'zlib1g-dev',
  '/usr/lib/x86_64-linux-gnu/libzstd.a': 'libzstd-dev',
  '/bin/busybox': 'busybox-static',
};

export class MissingToolError extends Error {
  constructor(what: string, pkg: string) {
    super(`${what} not found: install it with \`apt-get install ${pkg}\` (or run scripts/setup.sh)`);
    this.name = 'MissingToolError';
  }
}

const SEARCH_EXTRA = ['/usr/sbin', '/sbin'];

/** Absolute path of a tool, or a MissingToolError naming the package to install. */
export function which(tool: Tool): string {
  const dirs = [...system.path().split(delimiter), ...SEARCH_EXTRA];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, tool);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  throw new MissingToolError(tool, TOOLS[tool]);
}

/** Checks that files exist; `files` maps each to the Debian package that provides it. */
export function requireFiles(files: Record<string, string>): void {
  for (const [f, pkg] of Object.entries(files)) {
    try {
      accessSync(f, constants.R_OK);
    } catch {
      throw new MissingToolError(f, pkg);
    }
  }
}
