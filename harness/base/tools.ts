// Host tools the harness runs, each with the Debian package that provides it, so that a missing
// tool is one line that says what to install. Every program the harness spawns is found through
// which() (tests/unit/tools.test.ts scans harness/ for spawns and keeps this table exact).
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { system } from './config.js';

export const TOOLS = {
  // Guests (harness/guest/vm.ts, harness/guest/qemu.ts).
  'qemu-system-x86_64': 'qemu-system-x86',
  setpriv: 'util-linux',
  // Guest snapshots (harness/guest/snapshot-save.ts): the memory file, copied with its holes.
  cp: 'coreutils',
  // BPF objects (harness/suite/compile.ts), and vmlinux.h for CO-RE programs from a guest's BTF (harness/suite/btf.ts).
  clang: 'clang',
  bpftool: 'bpftool',
  // Debian kernels (harness/kernels/apt.ts, harness/kernels/catalog.ts).
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'dpkg-deb': 'dpkg',
  depmod: 'kmod',
  // The guest image (harness/guest/image.ts): the agent's build, its libraries, SSH keys, modules, the cpio.
  make: 'make',
  cc: 'gcc',
  ldd: 'libc-bin',
  dropbearkey: 'dropbear-bin',
  find: 'findutils',
  cpio: 'cpio',
  xz: 'xz-utils',
  zstd: 'zstd',
  gzip: 'gzip',
  // (xz, zstd, gzip and lz4 also unpack a bzImage's kernel for a direct PVH boot: harness/guest/pvh.ts)
  lz4: 'lz4',
  // Kernel source builds (harness/kernels/build.ts, harness/kernels/source.ts, harness/kernels/kconfig.ts); flex,
  // bison, bc and perl are run by the kernel's make, and checked before a build starts.
  gcc: 'gcc',
  ld: 'binutils',
  tar: 'tar',
  bash: 'bash',
  df: 'coreutils',
  git: 'git',
  flex: 'flex',
  bison: 'bison',
  bc: 'bc',
  perl: 'perl',
  // A bisect's incremental builds (harness/cli/bisect.ts), when installed.
  ccache: 'ccache',
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

/** Checks that every tool is there (the first missing one is the error). */
export function requireTools(...tools: Tool[]): void {
  for (const t of tools) which(t);
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
