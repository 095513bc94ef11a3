// Kernel source builds: the source (harness/kernels/source.ts) is configured with `make
// x86_64_defconfig` plus the harness's fragment kernels/config/bpf.config, checked
// (harness/kernels/kconfig.ts), built into a bzImage with everything built in (no modules), and cached by
// source digest + config + toolchain. Old trees on a new toolchain get the compatibility fixes
// they need (harness/kernels/compat.ts); the build's output is summed up by harness/kernels/build-log.ts.
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { arch, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { BuildProgress, compilerErrors, formatDuration } from './build-log.js';
import { cached, cacheRoot, contentKey, sha256 } from '../base/cache.js';
import { COMPAT_FIXES, fixConfigText, fixMakeVars, selectFixes, type Toolchain, treeInfo } from './compat.js';
import { checkConfig, kconfigDepends, parseConfig, treeSymbols } from './kconfig.js';
import { type BuildOptions, resolveSource, unpack } from './source.js';
import { type BuildSource, type Kernel, parseRelease } from './types.js';
import { resultsRoot, settings } from '../base/config.js';
import { fileSafe, REPO_ROOT, timestamp } from '../base/paths.js';
import { requireFiles, requireTools, which } from '../base/tools.js';

export const FRAGMENT_PATH = join(REPO_ROOT, 'kernels', 'config', 'bpf.config');
/** Bump when the build steps change what comes out for the same inputs. */
const BUILD_RECIPE = 'kernel-build-v1';

// ---------------------------------------------------------------------------------------------
// The build

export async function toolchain(): Promise<Toolchain> {
  const cc = (await execa(which('gcc'), ['-dumpfullversion', '-dumpversion'])).stdout.trim();
  const ld = (await execa(which('ld'), ['--version'])).stdout.split('\n')[0];
  const make = (await execa(which('make'), ['--version'])).stdout.split('\n')[0];
  return { ccMajor: Number(cc.split('.')[0]), id: `gcc ${cc}; ${ld}; ${make}` };
}

/** Host tools and headers a kernel build needs, checked before anything is downloaded. */
export function requireBuildTools(): void {
  requireTools('make', 'gcc', 'ld', 'flex', 'bison', 'bc', 'perl', 'tar', 'bash', 'df');
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

/**
 * make's compiler variables and environment for builds through ccache (when it is installed),
 * with its cache in `dir`: the kernel's and the host programs' compilers. The build's clock
 * (KBUILD_BUILD_TIMESTAMP) is fixed, so that files that print it compile the same each time.
 */
export function ccacheCompiler(dir: string): { vars: string[]; env: Record<string, string> } | undefined {
  let ccache: string;
  try {
    ccache = which('ccache');
  } catch {
    return undefined;
  }
  return {
    vars: [`CC=${ccache} gcc`, `HOSTCC=${ccache} gcc`],
    env: { CCACHE_DIR: dir, CCACHE_MAXSIZE: '5G', KBUILD_BUILD_TIMESTAMP: '1970-01-01' },
  };
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
  const jobs = opts.jobs ?? (settings().buildJobs ?? availableParallelism());
  const build = async (tmp: string): Promise<BuildMeta> => {
    requireBuildTools();
    /** The files of an incremental build's tree that the fixes edited, with their text before. */
    const undo = new Map<string, string>();
    const t0 = Date.now();
    const logDir = opts.logDir ?? join(resultsRoot(), `build-${fileSafe(name)}-${timestamp()}`);
    await mkdir(logDir, { recursive: true });
    const logPath = join(logDir, 'build.log');
    const log = createWriteStream(logPath);
    try {
      say(`kernel ${name}: ${opts.configOnly ? 'configuring' : 'building'} from ${source.label}; log ${logPath}`);
      const from = await source.materialize();
      const work = join(tmp, 'work');
      const inc = opts.incremental;
      let root: string;
      if (inc) {
        if (!('dir' in from)) throw new Error(`kernel ${name}: an incremental build needs a tree (a directory), not ${source.label}`);
        root = from.dir;
        await mkdir(inc.outDir, { recursive: true });
      } else {
        await mkdir(work);
        root = await unpack(from, work, say);
      }
      // Where make writes: the copy itself, or the incremental build's directory (O=).
      const out = inc ? inc.outDir : root;
      const tree = treeInfo(root);
      say(`source: Linux ${tree.version.join('.')} in ${root}${inc ? `, built into ${out}` : ''}`);
      const fixes = selectFixes(tree, tc);
      for (const f of fixes) {
        say(`compat: ${f.id}: ${f.why}`);
        for (const [rel, edit] of Object.entries(f.edit ?? {})) {
          const p = join(root, rel);
          if (!existsSync(p)) continue;
          const text = await readFile(p, 'utf8');
          // The caller's tree gets its files back as they were after the build.
          if (inc && !undo.has(p)) undo.set(p, text);
          await writeFile(p, edit(text));
        }
      }
      const ccache = inc ? ccacheCompiler(inc.ccacheDir) : undefined;
      if (inc) say(ccache ? `build: through ccache (${inc.ccacheDir})` : 'build: ccache is not installed (scripts/setup.sh installs it): each step compiles what changed since the last one');
      const make = async (args: string[], progress?: BuildProgress) => {
        log.write(`\n$ make ${args.join(' ')}\n`);
        // A native x86_64 build: ARCH and an empty CROSS_COMPILE on the command line override what
        // a tree's Makefile may have been edited to say (trees configured for cross builds exist).
        const child = execa(which('make'), [`-C`, root, ...(inc ? [`O=${out}`] : []), 'ARCH=x86_64', 'CROSS_COMPILE=', ...(ccache?.vars ?? []), ...fixMakeVars(fixes), ...args], {
          all: true,
          buffer: false,
          reject: false,
          stdin: 'ignore',
          env: { LC_ALL: 'C', KBUILD_BUILD_USER: 'bpf-harness', KBUILD_BUILD_HOST: 'bpf-harness', ...ccache?.env },
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
        if (existsSync(join(out, '.config'))) await copyFile(join(out, '.config'), join(logDir, 'config')).catch(() => {});
        const text = await readFile(logPath, 'utf8');
        const errors = compilerErrors(text);
        throw new KernelBuildError(`kernel ${name}: ${what} failed (make exited ${code}):\n${errors.map((l) => `  ${l}`).join('\n')}\nfull build log: ${logPath}`, logPath);
      };
      if (!inc && (existsSync(join(root, '.config')) || existsSync(join(root, 'include', 'config')))) {
        say('config: the tree was configured or built before; make mrproper in the build copy');
        const c = await make(['mrproper']);
        if (c) await fail('make mrproper', c);
      }
      say('config: make x86_64_defconfig, then kernels/config/bpf.config on top (make olddefconfig)');
      let code = await make(['x86_64_defconfig']);
      if (code) await fail('make x86_64_defconfig', code);
      const dotconfig = join(out, '.config');
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
      const release = (await readFile(join(out, 'include', 'config', 'kernel.release'), 'utf8')).trim();
      await copyFile(join(out, 'arch', 'x86', 'boot', 'bzImage'), join(tmp, 'bzImage'));
      await copyFile(dotconfig, join(tmp, 'config'));
      if (existsSync(join(out, 'System.map'))) await copyFile(join(out, 'System.map'), join(tmp, 'System.map'));
      await new Promise<void>((r) => log.end(r));
      await copyFile(logPath, join(tmp, 'build.log'));
      if (!inc) await rm(work, { recursive: true, force: true });
      const buildSeconds = Math.round((Date.now() - t0) / 1000);
      say(`build: ${release} built in ${formatDuration(Date.now() - t0)} (${progress.compiled} files compiled)`);
      return { release, pinned: `${source.label}, built with kernels/config/bpf.config`, fixes: fixes.map((f) => f.id), unknownOptions: check.unknown, buildSeconds };
    } finally {
      if (!log.closed) log.end();
      for (const [p, text] of undo) await writeFile(p, text);
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

