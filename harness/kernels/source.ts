// Kernel source for a build: resolved cheaply to a digest (the cache key), and materialized (a
// download checked against its sha256, Debian's linux-source package, or the user's own tree or
// tarball) only when a build needs it; then unpacked or copied into the build directory.
import { createWriteStream, existsSync, lstatSync, statSync } from 'node:fs';
import { lstat, mkdir, readdir, readlink, rename, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename, join, resolve } from 'node:path';
import { execa } from 'execa';
import { AptSuite, debianPin, pinServed } from './apt.js';
import { cached, contentKey, sha256File } from '../base/cache.js';
import type { BuildSource } from './types.js';
import { type Tool, which } from '../base/tools.js';

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
  /**
   * One of a series of builds of one tree (a bisect's steps): the tree, a directory source that
   * belongs to the caller, is built where it is instead of in a copy (the compatibility fixes
   * edit it during the build and are undone after), out of tree into `outDir`, which keeps the
   * objects from one build to the next so that make compiles only what changed; and through
   * ccache, when it is installed, with its cache in `ccacheDir`, so that what was compiled before
   * at all (a step back to older sources) is not compiled again.
   */
  incremental?: { outDir: string; ccacheDir: string };
}

export interface ResolvedSource {
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
    const { stdout } = await execa(which('git'), ['-C', dir, 'ls-files', '-z', '-c', '-o', '--exclude-standard'], { stripFinalNewline: false, maxBuffer: 1 << 30 });
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

export async function resolveSource(name: string, src: BuildSource, opts: BuildOptions): Promise<ResolvedSource> {
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
          await pinServed(name, pin, say);
          say(`source: downloading ${pkg} ${version} from Debian ${src.suite}`);
          const dl = join(tmp, 'dl');
          const root = join(tmp, 'root');
          const deb = await apt.unpack(pkg, version, debSha, dl, root);
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

/** Unpacks a tarball (or copies a tree) into `work`; returns the tree's root. */
export async function unpack(from: { tarball: string } | { dir: string }, work: string, say: (m: string) => void): Promise<string> {
  // tar says "No space left on device" once per file it could not write: one message instead,
  // with the place and the space.
  const run = async (what: string, tool: Tool, args: string[], size: number) => {
    const r = await execa(which(tool), args, { reject: false, all: true });
    if (r.exitCode === 0) return;
    const out = r.all ?? '';
    if (/No space left on device/.test(out)) {
      const free = await execa(which('df'), ['-Pk', work], { reject: false }).then((d) => Number(d.stdout.split('\n')[1]?.split(/\s+/)[3]) * 1024, () => NaN);
      throw new Error(`${what}: no space left on the device of ${work} (${(free / 2 ** 20).toFixed(0)} MiB free; the source needs about ${(size / 2 ** 20).toFixed(0)} MiB, a build several times that); free some, or set BPF_HARNESS_CACHE to a larger disk`);
    }
    throw new Error(`${what} failed (exit ${r.exitCode}):\n${out.split('\n').slice(-10).join('\n')}`);
  };
  if ('tarball' in from) {
    say(`source: unpacking ${basename(from.tarball)}`);
    // tar runs the decompressor itself: it must be there too.
    const ext = from.tarball.split('.').pop();
    if (ext === 'xz') which('xz');
    if (ext === 'zst') which('zstd');
    if (ext === 'gz') which('gzip');
    await run(`unpacking ${from.tarball}`, 'tar', ['-xf', from.tarball, '-C', work], statSync(from.tarball).size * 6);
  } else {
    say(`source: copying the tree at ${from.dir} (the build never writes to it)`);
    const files = await treeFiles(from.dir);
    const dest = join(work, 'linux');
    await mkdir(dest);
    const list = join(work, '.files');
    await writeFile(list, files.join('\0'));
    const size = files.reduce((n, f) => n + (lstatSync(join(from.dir, f), { throwIfNoEntry: false })?.size ?? 0), 0);
    await run(`copying ${from.dir}`, 'bash', ['-c', 'set -o pipefail; "$4" -C "$1" --null -T "$2" -cf - | "$4" -C "$3" -xf -', 'copy', from.dir, list, dest, which('tar')], size);
    await rm(list);
  }
  const entries = (await readdir(work, { withFileTypes: true })).filter((e) => e.isDirectory());
  const root = entries.length === 1 ? join(work, entries[0].name) : work;
  if (!existsSync(join(root, 'Makefile')) || !existsSync(join(root, 'Kconfig'))) throw new Error('the source has no top-level Makefile and Kconfig: not a kernel source tree');
  return root;
}
