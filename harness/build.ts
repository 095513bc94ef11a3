// Kernel source builds: a kernel source tree or tarball (a local path, a URL, or a catalog entry
// naming an upstream tarball or Debian's linux-source-X package) is configured with
// `make x86_64_defconfig` plus the harness's fragment kernels/config/bpf.config, checked, built
// into a bzImage with everything built in (no modules), and cached by source digest + config +
// toolchain. Old trees on a new toolchain get a few known compatibility fixes, each applied only
// when the tree needs it.
import { createWriteStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { copyFile, lstat, mkdir, readFile, readlink, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { arch, availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { execa } from 'execa';
import { AptSuite } from './apt.js';
import { cached, cacheRoot, contentKey, sha256, sha256File, sweepAbandoned } from './cache.js';
import { debianPin, type Kernel, parseRelease, REPO_ROOT } from './kernels.js';
import { fileSafe, resultsRoot, timestamp } from './paths.js';
import { requireFiles, which } from './tools.js';

export const FRAGMENT_PATH = join(REPO_ROOT, 'kernels', 'config', 'bpf.config');
/** Bump when the build steps change what comes out for the same inputs. */
const BUILD_RECIPE = 'kernel-build-v1';

/** An upstream tarball, fetched over HTTP(S) only when a build needs it, verified by sha256. */
export interface TarballSource {
  source: 'tarball';
  url: string;
  /** sha256 of the tarball; without it the user must give --sha256 or --source PATH. */
  sha256?: string;
  description?: string;
}

/** Debian's linux-source-X package (through the private apt), which ships /usr/src/linux-source-X.tar.xz. */
export interface DebianSourceSource {
  source: 'debian-source';
  suite: string;
  package: string;
  description?: string;
}

/** A local source tree (directory) or tarball given by path. */
export interface TreeSource {
  source: 'tree';
  path: string;
  description?: string;
}

export type BuildSource = TarballSource | DebianSourceSource | TreeSource;

// ---------------------------------------------------------------------------------------------
// Config fragments and the check after the merge

/**
 * Reads .config syntax: `CONFIG_X=value` and `# CONFIG_X is not set` (value "n"). Strict mode
 * (for the fragment) rejects anything else that is not a comment, and duplicates.
 */
export function parseConfig(text: string, opts: { strict?: boolean; origin?: string } = {}): Map<string, string> {
  const out = new Map<string, string>();
  const origin = opts.origin ?? 'config';
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    let name: string | undefined;
    let value: string | undefined;
    const off = /^#\s*(CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (off) [name, value] = [off[1], 'n'];
    else if (set) [name, value] = [set[1], set[2]];
    else if (line.startsWith('#')) return;
    else if (opts.strict) throw new Error(`${origin}:${i + 1}: not a config line: "${line}"`);
    else return;
    if (opts.strict && out.has(name)) throw new Error(`${origin}:${i + 1}: ${name} is set twice`);
    out.set(name, value);
  });
  return out;
}

/** The symbols one Kconfig file defines (`config X` and `menuconfig X`). */
export function kconfigSymbols(text: string): string[] {
  return [...text.matchAll(/^[ \t]*(?:menu)?config[ \t]+([A-Za-z0-9_]+)[ \t]*$/gm)].map((m) => m[1]);
}

/** The `depends on` lines of one symbol's entry in a Kconfig file, to say why it could not be set. */
export function kconfigDepends(text: string, symbol: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^[ \\t]*(?:menu)?config[ \\t]+${symbol}[ \\t]*$`).test(l));
  if (start < 0) return [];
  const out: string[] = [];
  for (const l of lines.slice(start + 1)) {
    // The entry ends at its help text or at the next entry.
    if (/^[ \t]*(?:(?:menu)?config|choice|endchoice|menu|endmenu|if|endif|source|comment|help|---help---)\b/.test(l)) break;
    const m = /^[ \t]+depends on[ \t]+(.*)$/.exec(l);
    if (m) out.push(m[1].trim());
  }
  return out;
}

export interface ConfigCheck {
  /** Options the tree knows that did not end up with the fragment's value. */
  mismatched: { option: string; want: string; got: string }[];
  /** Options the tree does not know at all (older or newer kernels): skipped. */
  unknown: string[];
}

/** Compares the merged .config with the fragment; `known` is the set of symbols the tree defines. */
export function checkConfig(fragment: Map<string, string>, final: Map<string, string>, known: Set<string>): ConfigCheck {
  const mismatched: ConfigCheck['mismatched'] = [];
  const unknown: string[] = [];
  for (const [option, want] of fragment) {
    if (!known.has(option.replace(/^CONFIG_/, ''))) {
      unknown.push(option);
      continue;
    }
    const got = final.get(option) ?? 'n';
    if (got !== want) mismatched.push({ option, want, got });
  }
  return { mismatched, unknown };
}

// ---------------------------------------------------------------------------------------------
// Compatibility fixes for old trees on a new toolchain

export interface TreeInfo {
  version: [number, number, number];
  /** A file of the tree by relative path, or null. */
  read(rel: string): string | null;
  /** File names in a directory of the tree (empty when missing). */
  list(rel: string): string[];
}

export interface Toolchain {
  /** gcc's major version. */
  ccMajor: number;
  /** One line naming compiler, linker and make versions (part of the cache key). */
  id: string;
}

export interface CompatFix {
  id: string;
  /** Why the fix exists; printed when it is applied. */
  why: string;
  needed(tree: TreeInfo, tc: Toolchain): boolean;
  /** Make variables, appended (space-separated) to what other fixes give the same variable. */
  make?: Record<string, string>;
  /** Edits to files of the build copy (never the user's tree): relative path -> new text. */
  edit?: Record<string, (text: string) => string>;
  /**
   * Config options set after kernels/config/bpf.config (same syntax as the fragment: "y", "n",
   * a number or a quoted string); they are checked after the merge like the fragment's own.
   */
  config?: Record<string, string>;
}

const older = (v: [number, number, number], than: string) => {
  const w = parseRelease(than);
  for (let i = 0; i < 3; i++) if (v[i] !== w[i]) return v[i] < w[i];
  return false;
};

/** Names defined without initializer at file scope ("tentative definitions") in one C file. */
export function tentativeDefinitions(c: string): string[] {
  const out: string[] = [];
  for (const m of c.matchAll(/^([A-Za-z_][\w \t*]*?)\b([A-Za-z_]\w*)[ \t]*(?:\[[^\]\n]*\])?[ \t]*;/gm)) {
    const type = m[1].trim();
    if (!type || /^(extern|static|typedef|return|goto)\b/.test(type)) continue;
    if (/^(struct|union|enum)$/.test(type)) continue; // a forward declaration
    out.push(m[2]);
  }
  return out;
}

/** Symbols with a tentative definition in more than one .c file of a directory. */
export function duplicateTentatives(tree: TreeInfo, dir: string): string[] {
  const seen = new Map<string, number>();
  for (const f of tree.list(dir).filter((n) => n.endsWith('.c'))) {
    for (const s of new Set(tentativeDefinitions(tree.read(`${dir}/${f}`) ?? ''))) seen.set(s, (seen.get(s) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([s]) => s).sort();
}

/** Roughly the first kernel release that built warning-free with each gcc major version. */
const FIRST_KERNEL_FOR_GCC: Record<number, string> = { 10: '5.7', 11: '5.13', 12: '6.0', 13: '6.3', 14: '6.9', 15: '6.15' };

export const COMPAT_FIXES: CompatFix[] = [
  {
    id: 'cf-protection-none',
    why: 'a compiler that instruments for CET by default (-fcf-protection) rejects retpoline\'s -mindirect-branch on trees older than the kernel\'s own -fcf-protection=none',
    needed: (tree, tc) => tc.ccMajor >= 8 && !/fcf-protection/.test((tree.read('Makefile') ?? '') + (tree.read('arch/x86/Makefile') ?? '')),
    make: { KCFLAGS: '-fcf-protection=none' },
  },
  {
    id: 'boot-compressed-fcommon',
    why: 'gcc 10+ defaults to -fno-common, and the compressed boot wrapper of old trees defines the same variable in two files (e.g. __force_order); that directory sets its own flags and ignores KCFLAGS, so -fcommon goes into its Makefile',
    needed: (tree) =>
      !/-fcommon/.test(tree.read('arch/x86/boot/compressed/Makefile') ?? '-fcommon') && duplicateTentatives(tree, 'arch/x86/boot/compressed').length > 0,
    edit: {
      'arch/x86/boot/compressed/Makefile': (t) =>
        `${t.replace(/\n*$/, '\n')}\n# bpf-harness: duplicate tentative definitions link only with -fcommon (gcc 10+ default to -fno-common).\nKBUILD_CFLAGS += -fcommon\n`,
    },
  },
  {
    id: 'host-tools-no-werror',
    why: 'objtool and libsubcmd are host tools built with -Werror; a compiler newer than the tree warns about code it accepted before (gcc 12: -Wuse-after-free in libsubcmd\'s xrealloc), so their warnings stay warnings',
    needed: (tree, tc) => {
      const first = FIRST_KERNEL_FOR_GCC[Math.min(tc.ccMajor, 15)];
      if (!first || !older(tree.version, first)) return false;
      return ['tools/objtool/Makefile', 'tools/lib/subcmd/Makefile'].some((f) => /(^|\s)-Werror(?=\s|$)/m.test(tree.read(f) ?? ''));
    },
    edit: Object.fromEntries(
      ['tools/objtool/Makefile', 'tools/lib/subcmd/Makefile'].map((f) => [f, (t: string) => t.replace(/(^|[ \t])-Werror(?=[ \t]|$)/gm, '$1-Wno-error')]),
    ),
  },
  {
    id: 'relocs-plt32',
    why: 'binutils 2.31+ emit R_X86_64_PLT32 for calls, which this tree\'s relocs tool (and module loader) reject ("Unsupported relocation type: R_X86_64_PLT32"); they are treated as R_X86_64_PC32, as 4.16 does',
    needed: (tree) => {
      const relocs = tree.read('arch/x86/tools/relocs.c') ?? '';
      // The tree may name the type (REL_TYPE(R_X86_64_PLT32)) without handling it.
      return /case R_X86_64_PC32:/.test(relocs) && !/case R_X86_64_PLT32:/.test(relocs);
    },
    edit: Object.fromEntries(
      ['arch/x86/tools/relocs.c', 'arch/x86/kernel/module.c', 'arch/x86/kernel/machine_kexec_64.c'].map((f) => [
        f,
        (t: string) => t.replace(/^([ \t]*)case R_X86_64_PC32:\n/m, (line, indent: string) => `${line}${indent}case R_X86_64_PLT32: /* bpf-harness: as 4.16 does */\n`),
      ]),
    ),
  },
  {
    id: 'objtool-symtab-frame-pointer',
    why: 'this tree\'s objtool gives up on an object without a symbol table ("missing symbol table"), which new binutils write for arch/x86/entry/thunk_64.o; objtool runs only for stack validation, which the ORC unwinder and retpoline select, so the frame-pointer unwinder is chosen and retpoline and stack validation are off (a test guest needs no Spectre v2 mitigation)',
    needed: (tree) => {
      const elf = tree.read('tools/objtool/elf.c') ?? '';
      // Newer objtool accepts a missing .symtab ("A missing symbol table is actually possible ...").
      return /WARN\("missing symbol table"\);\s*return -1;/.test(elf);
    },
    // 4.14.0-4.14.x spell the choice ORC_UNWINDER/FRAME_POINTER_UNWINDER (renamed in 4.15 and in later 4.14.y).
    config: {
      CONFIG_UNWINDER_ORC: 'n',
      CONFIG_UNWINDER_FRAME_POINTER: 'y',
      CONFIG_ORC_UNWINDER: 'n',
      CONFIG_FRAME_POINTER_UNWINDER: 'y',
      CONFIG_FRAME_POINTER: 'y',
      // 4.14.y and 4.19.y: "config RETPOLINE ... select STACK_VALIDATION if HAVE_STACK_VALIDATION".
      CONFIG_RETPOLINE: 'n',
      CONFIG_STACK_VALIDATION: 'n',
    },
  },
];

/** The config lines the chosen fixes add after the fragment, as text in .config syntax. */
export function fixConfigText(fixes: CompatFix[]): string {
  const lines = fixes.flatMap((f) =>
    Object.entries(f.config ?? {}).map(([k, v]) => (v === 'n' ? `# ${k} is not set` : `${k}=${v}`)),
  );
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export function selectFixes(tree: TreeInfo, tc: Toolchain, fixes = COMPAT_FIXES): CompatFix[] {
  return fixes.filter((f) => f.needed(tree, tc));
}

/** The make variables the chosen fixes add, as `NAME=value` arguments. */
export function fixMakeVars(fixes: CompatFix[]): string[] {
  const vars = new Map<string, string[]>();
  for (const f of fixes) for (const [k, v] of Object.entries(f.make ?? {})) vars.set(k, [...(vars.get(k) ?? []), v]);
  return [...vars].map(([k, v]) => `${k}=${v.join(' ')}`);
}

/** Reads VERSION, PATCHLEVEL and SUBLEVEL from a tree's top Makefile. */
export function makefileVersion(makefile: string): [number, number, number] {
  const get = (k: string) => new RegExp(`^${k}\\s*=\\s*(\\d+)`, 'm').exec(makefile)?.[1];
  const v = get('VERSION');
  const p = get('PATCHLEVEL');
  if (!v || !p) throw new Error('the top Makefile has no VERSION/PATCHLEVEL: not a kernel source tree');
  return [Number(v), Number(p), Number(get('SUBLEVEL') ?? 0)];
}

export function treeInfo(root: string): TreeInfo {
  const read = (rel: string) => {
    try {
      return readFileSync(join(root, rel), 'utf8');
    } catch {
      return null;
    }
  };
  const list = (rel: string) => {
    try {
      return readdirSync(join(root, rel));
    } catch {
      return [];
    }
  };
  return { version: makefileVersion(read('Makefile') ?? ''), read, list };
}

// ---------------------------------------------------------------------------------------------
// Build output: progress and errors

export interface KbuildStep {
  /** CC, LD, AR, HOSTCC, AS, ... */
  step: string;
  target: string;
}

/** One line of kbuild's quiet output ("  CC      kernel/fork.o"), or null for anything else. */
export function parseKbuildLine(line: string): KbuildStep | null {
  const m = /^ {2}([A-Z][A-Z0-9_-]*)(?: \[M\])?\s+(\S.*)$/.exec(line);
  return m ? { step: m[1], target: m[2].trim() } : null;
}

/** Counts what make did, for the heartbeat. */
export class BuildProgress {
  compiled = 0;
  steps = 0;
  last = '';
  milestone: string | null = null;
  add(line: string): void {
    const s = parseKbuildLine(line);
    if (!s) return;
    this.steps++;
    if (s.step === 'CC') this.compiled++;
    this.last = `${s.step} ${s.target}`;
    if ((s.step === 'LD' && s.target === 'vmlinux') || (s.step === 'BUILD' && /bzImage$/.test(s.target))) this.milestone = this.last;
  }
  /** A milestone seen since the last call (linking vmlinux, writing the bzImage), once. */
  takeMilestone(): string | null {
    const m = this.milestone;
    this.milestone = null;
    return m;
  }
  summary(elapsedMs: number): string {
    return `${this.compiled} files compiled, ${formatDuration(elapsedMs)} so far${this.last ? `; last: ${this.last}` : ''}`;
  }
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

const COMPILER_MESSAGE = /(\berror:|\bError:|#error|undefined reference to|multiple definition of|No rule to make target|cannot find -l|ld: .*(error|cannot)|fatal:|Segmentation fault|Killed)/;

/**
 * The compiler's own message from a failed build log: the last error lines (compiler, assembler,
 * linker), then make's last "***" line; the log's last lines when nothing matches.
 */
export function compilerErrors(log: string, max = 15): string[] {
  const lines = log.split('\n').map((l) => l.replace(/\s+$/, ''));
  const errors = lines.filter((l) => COMPILER_MESSAGE.test(l) && !/^make(\[\d+\])?: \*\*\*/.test(l));
  const make = lines.filter((l) => /^make(\[\d+\])?: \*\*\*/.test(l));
  if (!errors.length) return lines.filter(Boolean).slice(-max);
  const unique = [...new Set(errors)];
  return [...unique.slice(-max), ...make.slice(-1)];
}

// ---------------------------------------------------------------------------------------------
// Sources: resolve to a digest (cheap) and materialize (fetch) only when a build needs it

export interface BuildOptions {
  onProgress?: (m: string) => void;
  /** sha256 of a tarball source that the catalog does not pin, or of a URL. */
  sha256?: string;
  /** A local copy of a tarball entry's file (no download). */
  sourcePath?: string;
  jobs?: number;
  /** Where the build log goes (default: the results directory). */
  logDir?: string;
  /** Only configure and check the config (minutes, not tens of minutes); nothing is built or cached. */
  configOnly?: boolean;
}

interface ResolvedSource {
  /** What the cache key is made of: the tarball's sha256, the tree's digest, the package's pin. */
  digest: string;
  /** For messages and Kernel.pinned. */
  label: string;
  /** Produces a tarball file or a directory (download, apt, or the user's own files). */
  materialize(): Promise<{ tarball: string } | { dir: string }>;
}

/** Files of a source tree: git's list (tracked and untracked, not ignored) in a git tree, else all but .git. */
async function treeFiles(dir: string): Promise<string[]> {
  if (existsSync(join(dir, '.git'))) {
    const { stdout } = await execa('git', ['-C', dir, 'ls-files', '-z', '-c', '-o', '--exclude-standard'], { stripFinalNewline: false, maxBuffer: 1 << 30 });
    // Only what is there: a tracked file deleted in the work tree, or a submodule, is left out.
    const listed = [...new Set(stdout.split('\0').filter(Boolean))].sort();
    const present = await Promise.all(listed.map((f) => lstat(join(dir, f)).then((st) => st.isFile() || st.isSymbolicLink(), () => false)));
    return listed.filter((_, i) => present[i]);
  }
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (e.name !== '.git') await walk(r);
      } else if (e.isFile() || e.isSymbolicLink()) out.push(r);
    }
  };
  await walk('');
  return out.sort();
}

/** A digest of a tree's content: every file's path, mode (executable or not) and bytes. */
export async function treeDigest(dir: string, files?: string[]): Promise<string> {
  const h = createHash('sha256');
  for (const rel of files ?? (await treeFiles(dir))) {
    const p = join(dir, rel);
    const st = await lstat(p).catch(() => null);
    if (!st) continue; // listed by git but deleted
    if (st.isSymbolicLink()) h.update(`${rel}\0L\0${await readlink(p)}\0`);
    else h.update(`${rel}\0${st.mode & 0o111 ? 'x' : '-'}\0${await sha256File(p)}\0`);
  }
  return h.digest('hex');
}

async function download(url: string, dest: string, want: string, say: (m: string) => void): Promise<void> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`downloading ${url}: HTTP ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get('content-length')) || 0;
  const h = createHash('sha256');
  const out = createWriteStream(dest);
  let got = 0;
  let told = Date.now();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    h.update(chunk);
    got += chunk.length;
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
    if (Date.now() - told > 15_000) {
      told = Date.now();
      say(`source: ${(got / 2 ** 20).toFixed(0)} MiB${total ? ` of ${(total / 2 ** 20).toFixed(0)} MiB` : ''} downloaded`);
    }
  }
  await new Promise<void>((res2, rej) => out.end((e?: Error | null) => (e ? rej(e) : res2())));
  const sum = h.digest('hex');
  if (sum !== want) {
    await rm(dest, { force: true });
    throw new Error(`${url}: sha256 is ${sum}, expected ${want}; the download was discarded`);
  }
}

async function resolveSource(name: string, src: BuildSource, opts: BuildOptions): Promise<ResolvedSource> {
  const say = opts.onProgress ?? (() => {});
  if (src.source === 'tree') {
    const path = resolve(src.path);
    if (!existsSync(path)) throw new Error(`kernel source ${path} does not exist`);
    if (statSync(path).isDirectory()) {
      if (!existsSync(join(path, 'Makefile')) || !existsSync(join(path, 'Kconfig'))) throw new Error(`${path} is not a kernel source tree (no Makefile and Kconfig)`);
      say(`source: hashing the tree at ${path}`);
      const files = await treeFiles(path);
      const digest = await treeDigest(path, files);
      return { digest: `tree:${digest}`, label: `${path} (tree ${digest.slice(0, 12)})`, materialize: async () => ({ dir: path }) };
    }
    const sum = await sha256File(path);
    return { digest: `tarball:${sum}`, label: `${basename(path)} (sha256 ${sum.slice(0, 12)})`, materialize: async () => ({ tarball: path }) };
  }
  if (src.source === 'tarball') {
    const pinned = src.sha256?.toLowerCase();
    const given = opts.sha256?.toLowerCase();
    if (pinned && given && pinned !== given) throw new Error(`kernel ${name}: --sha256 ${given} differs from the catalog's ${pinned}`);
    const file = basename(new URL(src.url).pathname);
    if (opts.sourcePath) {
      const sum = await sha256File(opts.sourcePath);
      const want = pinned ?? given;
      if (want && sum !== want) throw new Error(`kernel ${name}: ${opts.sourcePath} has sha256 ${sum}, expected ${want}`);
      if (!want) say(`source: ${opts.sourcePath} is used as given: no sha256 to check it against`);
      return { digest: `tarball:${sum}`, label: `${file} (sha256 ${sum.slice(0, 12)})`, materialize: async () => ({ tarball: resolve(opts.sourcePath!) }) };
    }
    const want = pinned ?? given;
    if (!want || !/^[0-9a-f]{64}$/.test(want)) {
      throw new Error(
        `kernel ${name}: no sha256 for ${src.url}; give --sha256 HEX (from the release's signed checksum list) or --source PATH to a copy you have`,
      );
    }
    return {
      digest: `tarball:${want}`,
      label: `${file} (sha256 ${want.slice(0, 12)})`,
      materialize: async () => {
        const { dir } = await cached({
          area: 'sources',
          key: contentKey('tarball', want),
          onProgress: say,
          build: async (tmp) => {
            say(`source: downloading ${src.url}`);
            await download(src.url, join(tmp, file), want, say);
            return { file };
          },
        });
        return { tarball: join(dir, file) };
      },
    };
  }
  // debian-source: the version kernels/lock.json pins (as for Debian kernels), else the newest.
  const apt = new AptSuite(src.suite);
  const pin = await debianPin(name, { source: 'debian', suite: src.suite, package: src.package }, say);
  const { package: pkg, version, sha256: debSha } = pin;
  return {
    digest: `debian-source:${pkg}:${version}:${debSha ?? ''}`,
    label: `${pkg} ${version} (Debian ${src.suite})`,
    materialize: async () => {
      const { dir, meta } = await cached<{ file: string }>({
        area: 'sources',
        key: contentKey('debian-source', pkg, version, debSha ?? ''),
        onProgress: say,
        build: async (tmp) => {
          say(`source: downloading ${pkg} ${version} from Debian ${src.suite}`);
          const dl = join(tmp, 'dl');
          await mkdir(dl);
          const deb = await apt.download(pkg, version, dl);
          if (debSha && (await sha256File(deb)) !== debSha) throw new Error(`${basename(deb)}: sha256 does not match the archive index`);
          const root = join(tmp, 'root');
          await execa(which('dpkg-deb'), ['-x', deb, root]);
          const srcDir = join(root, 'usr', 'src');
          const inner = existsSync(srcDir) ? (await readdir(srcDir)).find((f) => /^linux-source-.*\.tar\.(xz|gz|bz2)$/.test(f)) : undefined;
          if (!inner) throw new Error(`${basename(deb)} has no /usr/src/linux-source-*.tar.*`);
          await rename(join(srcDir, inner), join(tmp, inner));
          await rm(root, { recursive: true, force: true });
          await rm(dl, { recursive: true, force: true });
          return { file: inner };
        },
      });
      return { tarball: join(dir, meta.file) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The build

export async function toolchain(): Promise<Toolchain> {
  which('cc');
  which('make');
  const cc = (await execa('gcc', ['-dumpfullversion', '-dumpversion'])).stdout.trim();
  const ld = (await execa('ld', ['--version'])).stdout.split('\n')[0];
  const make = (await execa(which('make'), ['--version'])).stdout.split('\n')[0];
  return { ccMajor: Number(cc.split('.')[0]), id: `gcc ${cc}; ${ld}; ${make}` };
}

/** Host tools and headers a kernel build needs, checked before anything is downloaded. */
export function requireBuildTools(): void {
  for (const t of ['make', 'cc', 'flex', 'bison', 'bc', 'perl'] as const) which(t);
  requireFiles({ '/usr/include/libelf.h': 'libelf-dev', '/usr/include/openssl/ssl.h': 'libssl-dev' });
}

export interface BuildMeta {
  release: string;
  pinned: string;
  fixes: string[];
  unknownOptions: string[];
  buildSeconds: number;
}

export class KernelBuildError extends Error {
  constructor(
    message: string,
    readonly log: string,
  ) {
    super(message);
    this.name = 'KernelBuildError';
  }
}

/** The cache key of a build: source digest, fragment, toolchain, recipe. */
export function buildKey(sourceDigest: string, fragment: string, tc: Toolchain): string {
  // A fix's id and its config lines: changing what a fix sets makes a new build.
  const fixes = COMPAT_FIXES.map((f) => `${f.id}:${fixConfigText([f])}`).join(',');
  return contentKey(BUILD_RECIPE, sourceDigest, sha256(fragment), tc.id, fixes, arch());
}

/** Builds (or finds in the cache) a kernel from source; the result boots like any catalog kernel. */
export async function buildKernel(name: string, src: BuildSource, opts: BuildOptions = {}): Promise<Kernel & { built: boolean; buildSeconds: number }> {
  const say = opts.onProgress ?? (() => {});
  if (arch() !== 'x64') throw new Error(`kernel source builds need an x86_64 host (this is ${arch()})`);
  const fragmentText = await readFile(FRAGMENT_PATH, 'utf8');
  const fragment = parseConfig(fragmentText, { strict: true, origin: 'kernels/config/bpf.config' });
  const tc = await toolchain();
  const source = await resolveSource(name, src, opts);
  const key = buildKey(source.digest, fragmentText, tc);
  const jobs = opts.jobs ?? (Number(process.env.BPF_HARNESS_BUILD_JOBS) || availableParallelism());
  await sweepAbandoned(join(cacheRoot(), 'kernels'), say);
  const build = async (tmp: string): Promise<BuildMeta> => {
    requireBuildTools();
    const t0 = Date.now();
    const logDir = opts.logDir ?? join(resultsRoot(), `build-${fileSafe(name)}-${timestamp()}`);
    await mkdir(logDir, { recursive: true });
    const logPath = join(logDir, 'build.log');
    const log = createWriteStream(logPath);
    try {
      say(`kernel ${name}: ${opts.configOnly ? 'configuring' : 'building'} from ${source.label}; log ${logPath}`);
      const from = await source.materialize();
      const work = join(tmp, 'work');
      await mkdir(work);
      const root = await unpack(from, work, say);
      const tree = treeInfo(root);
      say(`source: Linux ${tree.version.join('.')} in ${root}`);
      const fixes = selectFixes(tree, tc);
      for (const f of fixes) {
        say(`compat: ${f.id}: ${f.why}`);
        for (const [rel, edit] of Object.entries(f.edit ?? {})) {
          const p = join(root, rel);
          if (existsSync(p)) await writeFile(p, edit(await readFile(p, 'utf8')));
        }
      }
      const make = async (args: string[], progress?: BuildProgress) => {
        log.write(`\n$ make ${args.join(' ')}\n`);
        // A native x86_64 build: ARCH and an empty CROSS_COMPILE on the command line override what
        // a tree's Makefile may have been edited to say (trees configured for cross builds exist).
        const child = execa(which('make'), [`-C`, root, 'ARCH=x86_64', 'CROSS_COMPILE=', ...fixMakeVars(fixes), ...args], {
          all: true,
          buffer: false,
          reject: false,
          stdin: 'ignore',
          env: { LC_ALL: 'C', KBUILD_BUILD_USER: 'bpf-harness', KBUILD_BUILD_HOST: 'bpf-harness' },
        });
        let partial = '';
        child.all!.on('data', (d: Buffer) => {
          log.write(d);
          if (!progress) return;
          const lines = (partial + d.toString()).split('\n');
          partial = lines.pop() ?? '';
          for (const l of lines) progress.add(l);
        });
        const r = await child;
        return r.exitCode ?? 1;
      };
      const fail = async (what: string, code: number): Promise<never> => {
        await new Promise<void>((r) => log.end(r));
        if (existsSync(join(root, '.config'))) await copyFile(join(root, '.config'), join(logDir, 'config')).catch(() => {});
        const text = await readFile(logPath, 'utf8');
        const errors = compilerErrors(text);
        throw new KernelBuildError(`kernel ${name}: ${what} failed (make exited ${code}):\n${errors.map((l) => `  ${l}`).join('\n')}\nfull build log: ${logPath}`, logPath);
      };
      if (existsSync(join(root, '.config')) || existsSync(join(root, 'include', 'config'))) {
        say('config: the tree was configured or built before; make mrproper in the build copy');
        const c = await make(['mrproper']);
        if (c) await fail('make mrproper', c);
      }
      say('config: make x86_64_defconfig, then kernels/config/bpf.config on top (make olddefconfig)');
      let code = await make(['x86_64_defconfig']);
      if (code) await fail('make x86_64_defconfig', code);
      const dotconfig = join(root, '.config');
      const fixConfig = fixConfigText(fixes);
      await writeFile(
        dotconfig,
        `${(await readFile(dotconfig, 'utf8')).replace(/\n*$/, '\n')}\n# bpf-harness: kernels/config/bpf.config\n${fragmentText}${fixConfig ? `\n# bpf-harness: compatibility fixes\n${fixConfig}` : ''}`,
      );
      code = await make(['olddefconfig']);
      if (code) await fail('make olddefconfig', code);
      const final = parseConfig(await readFile(dotconfig, 'utf8'));
      const { known, defined } = await treeSymbols(root);
      // The fixes' options override the fragment's and are checked the same way.
      const wanted = new Map([...fragment, ...parseConfig(fixConfig)]);
      const check = checkConfig(wanted, final, known);
      if (check.unknown.length) say(`config: options this tree does not know (skipped): ${check.unknown.join(' ')}`);
      if (check.mismatched.length) {
        const lines = check.mismatched.map(({ option, want, got }) => {
          const file = defined.get(option.replace(/^CONFIG_/, ''));
          const deps = file ? kconfigDepends(readFileSync(join(root, file), 'utf8'), option.replace(/^CONFIG_/, '')) : [];
          return `  ${option}: wanted ${want}, got ${got}${deps.length ? ` (depends on ${deps.join(' && ')}; ${file})` : file ? ` (${file})` : ''}`;
        });
        log.write(`\nconfig check failed:\n${lines.join('\n')}\n`);
        await new Promise<void>((r) => log.end(r));
        throw new KernelBuildError(`kernel ${name}: the merged config does not have what kernels/config/bpf.config asks for:\n${lines.join('\n')}\nfull log: ${logPath}`, logPath);
      }
      say(`config: all ${wanted.size - check.unknown.length} options of the fragment${fixConfig ? ' and the fixes' : ''} this tree knows are set as asked`);
      if (opts.configOnly) {
        await new Promise<void>((r) => log.end(r));
        const version = treeInfo(root).version.join('.');
        return { release: version, pinned: source.label, fixes: fixes.map((f) => f.id), unknownOptions: check.unknown, buildSeconds: 0 };
      }
      say(`build: make -j${jobs} bzImage${fixMakeVars(fixes).length ? ` ${fixMakeVars(fixes).join(' ')}` : ''} (a cold build takes a while; progress every 30 s)`);
      const progress = new BuildProgress();
      const tb = Date.now();
      const beat = setInterval(() => say(`build: ${progress.summary(Date.now() - tb)}`), 30_000);
      const mile = setInterval(() => {
        const m = progress.takeMilestone();
        if (m) say(`build: ${m}`);
      }, 1000);
      try {
        code = await make([`-j${jobs}`, 'bzImage'], progress);
      } finally {
        clearInterval(beat);
        clearInterval(mile);
      }
      if (code) await fail('make bzImage', code);
      const release = (await readFile(join(root, 'include', 'config', 'kernel.release'), 'utf8')).trim();
      await copyFile(join(root, 'arch', 'x86', 'boot', 'bzImage'), join(tmp, 'bzImage'));
      await copyFile(dotconfig, join(tmp, 'config'));
      if (existsSync(join(root, 'System.map'))) await copyFile(join(root, 'System.map'), join(tmp, 'System.map'));
      await new Promise<void>((r) => log.end(r));
      await copyFile(logPath, join(tmp, 'build.log'));
      await rm(work, { recursive: true, force: true });
      const buildSeconds = Math.round((Date.now() - t0) / 1000);
      say(`build: ${release} built in ${formatDuration(Date.now() - t0)} (${progress.compiled} files compiled)`);
      return { release, pinned: `${source.label}, built with kernels/config/bpf.config`, fixes: fixes.map((f) => f.id), unknownOptions: check.unknown, buildSeconds };
    } finally {
      if (!log.closed) log.end();
    }
  };
  if (opts.configOnly) {
    // Configure and check in a scratch directory, then throw the tree away: nothing is cached.
    const tmp = join(cacheRoot(), 'tmp', `config-${process.pid}-${Date.now()}`);
    await mkdir(tmp, { recursive: true });
    try {
      const meta = await build(tmp);
      return { name, release: meta.release, version: parseRelease(meta.release), bzImage: '', modulesDir: null, pinned: meta.pinned, built: false, buildSeconds: 0 };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  const { dir, meta, built } = await cached<BuildMeta>({ area: 'kernels', key, verify: ['bzImage', 'config'], onProgress: say, build });
  return {
    name,
    release: meta.release,
    version: parseRelease(meta.release),
    bzImage: join(dir, 'bzImage'),
    modulesDir: null,
    pinned: meta.pinned,
    built,
    buildSeconds: meta.buildSeconds,
  };
}

/** Unpacks a tarball (or copies a tree) into `work`; returns the tree's root. */
async function unpack(from: { tarball: string } | { dir: string }, work: string, say: (m: string) => void): Promise<string> {
  if ('tarball' in from) {
    say(`source: unpacking ${basename(from.tarball)}`);
    await execa('tar', ['-xf', from.tarball, '-C', work]);
  } else {
    say(`source: copying the tree at ${from.dir} (the build never writes to it)`);
    const files = await treeFiles(from.dir);
    const dest = join(work, 'linux');
    await mkdir(dest);
    const list = join(work, '.files');
    await writeFile(list, files.join('\0'));
    await execa('bash', ['-c', 'tar -C "$1" --null -T "$2" -cf - | tar -C "$3" -xf -', 'copy', from.dir, list, dest]);
    await rm(list);
  }
  const entries = (await readdir(work, { withFileTypes: true })).filter((e) => e.isDirectory());
  const root = entries.length === 1 ? join(work, entries[0].name) : work;
  if (!existsSync(join(root, 'Makefile')) || !existsSync(join(root, 'Kconfig'))) throw new Error('the source has no top-level Makefile and Kconfig: not a kernel source tree');
  return root;
}

/** Every Kconfig symbol the tree defines, and the file that defines it. */
async function treeSymbols(root: string): Promise<{ known: Set<string>; defined: Map<string, string> }> {
  const { stdout } = await execa('find', ['.', '-name', 'Kconfig*', '-type', 'f', '-not', '-path', './Documentation/*'], { cwd: root, maxBuffer: 1 << 28 });
  const defined = new Map<string, string>();
  for (const rel of stdout.split('\n').filter(Boolean)) {
    const file = rel.replace(/^\.\//, '');
    for (const s of kconfigSymbols(await readFile(join(root, file), 'utf8'))) if (!defined.has(s)) defined.set(s, file);
  }
  return { known: new Set(defined.keys()), defined };
}
