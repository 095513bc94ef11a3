// Kernel catalog: names a kernel, resolves it to one exact artifact (bzImage + modules), fetches
// and caches it. Sources: Debian packages (through a private apt state), local bzImages, and
// kernel source (a tree, a tarball, Debian's linux-source-X) built by harness/kernels/build.ts.
import { existsSync, statSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rename, rm, symlink } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { execa } from 'execa';
import { AptSuite, debianPin, pinServed } from './apt.js';
import { buildKernel } from './build.js';
import { cached, contentKey } from '../base/cache.js';
import { settings } from '../base/config.js';
import type { Catalog, DebianSource, Kernel, KernelSource, LocalSource, Progress } from './types.js';
import { parseRelease } from './types.js';
import { isObject, readJsonFile } from '../base/json-file.js';
import { REPO_ROOT } from '../base/paths.js';
import { which } from '../base/tools.js';

// The catalog's types and version helpers live in types.ts; most users reach them here.
export { atLeast, parseRelease, type Catalog, type DebianSource, type Kernel, type KernelSource, type LocalSource, type Progress } from './types.js';
export { REPO_ROOT };
export const CATALOG_PATH = join(REPO_ROOT, 'kernels', 'catalog.json');

export class UnknownKernelError extends Error {
  constructor(name: string, known: string[]) {
    super(`unknown kernel "${name}": known kernels are ${known.join(', ')} (or give a path to a bzImage)`);
    this.name = 'UnknownKernelError';
  }
}

export function loadCatalog(path = CATALOG_PATH): Catalog {
  const c = readJsonFile<Catalog>(path, (v) => (isObject(v) && typeof v.default === 'string' && isObject(v.kernels) ? null : 'not a kernel catalog (default, kernels)'));
  if (!c.kernels[c.default]) throw new Error(`${path}: default kernel "${c.default}" is not in the catalog`);
  return c;
}

/** A path that names kernel source, not a bzImage: a directory, or a file named like a tarball. */
export function isSourcePath(path: string): boolean {
  if (/\.(tar\.(xz|gz|bz2|zst)|tgz|tar)$/.test(path)) return true;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * A catalog name; kernel source to build (a tarball URL, a tarball path, a source directory); or a
 * path to a bzImage (anything else with a slash, or an existing file).
 */
export function lookupKernel(name: string, catalog = loadCatalog(), modules?: string): KernelSource {
  // Kernel source to build: a URL of a tarball, a tarball by its name, or a directory.
  if (/^https?:\/\//.test(name)) return { source: 'tarball', url: name };
  if ((name.includes('/') || existsSync(name)) && isSourcePath(name)) return { source: 'tree', path: resolve(name) };
  if (name.includes('/') || existsSync(name)) {
    return { source: 'local', bzImage: resolve(name), modules: modules ? resolve(modules) : undefined };
  }
  const k = catalog.kernels[name];
  if (!k) throw new UnknownKernelError(name, Object.keys(catalog.kernels));
  return k;
}

/** The release string stored in an x86 bzImage's setup header (kernel_version field). */
export function bzImageRelease(buf: Buffer): string {
  if (buf.length < 0x210 || buf.toString('latin1', 0x202, 0x206) !== 'HdrS') {
    throw new Error('not an x86 bzImage (no HdrS setup header)');
  }
  const off = buf.readUInt16LE(0x20e) + 0x200;
  const end = buf.indexOf(0, off);
  return buf.toString('latin1', off, end).split(' ')[0];
}

async function fetchDebian(name: string, src: DebianSource, onProgress?: Progress): Promise<Kernel> {
  const apt = new AptSuite(src.suite);
  const pin = await debianPin(name, src, onProgress);
  const pkg = pin.package;
  const version = pin.version;
  const debSha = pin.sha256;
  const { dir, meta } = await cached<{ release: string; pinned: string }>({
    area: 'kernels',
    key: contentKey('debian', pkg, version, debSha ?? ''),
    // The kernel, the module index, and every module a guest image takes from the entry (a
    // truncated module would otherwise break each later run): checked on each use.
    verify: async (dir) => ['bzImage', 'modules/modules.dep', ...(await imageModules(join(dir, 'modules'))).map((m) => `modules/${m}`)],
    onProgress,
    build: async (tmp) => {
      await pinServed(name, pin, onProgress);
      onProgress?.(`kernel ${name}: downloading ${pkg} ${version} from Debian ${src.suite}`);
      const dl = join(tmp, 'dl');
      const root = join(tmp, 'root');
      const deb = await apt.unpack(pkg, version, debSha, dl, root);
      // Newer Debian kernels split the image package: the kernel, the modules and the base files
      // (its config) come in linux-binary-*, linux-modules-* and linux-base-* packages of the
      // same version.
      const depends = (await apt.show(`${pkg}=${version}`)).Depends ?? '';
      for (const m of depends.matchAll(/(linux-(?:binary|modules|base)-[^\s,(]+)\s*\(=\s*([^)]+)\)/g)) {
        onProgress?.(`kernel ${name}: downloading ${m[1]} ${m[2]}`);
        await apt.unpack(m[1], m[2], undefined, dl, root);
      }
      // The kernel is /boot/vmlinuz-RELEASE, or (newest packages) /usr/lib/modules/RELEASE/vmlinuz.
      const boot = existsSync(join(root, 'boot')) ? await readdir(join(root, 'boot')) : [];
      const usrModules = join(root, 'usr', 'lib', 'modules');
      const inModules = existsSync(usrModules) ? (await readdir(usrModules)).find((r) => existsSync(join(usrModules, r, 'vmlinuz'))) : undefined;
      const vmlinuz = boot.find((f) => f.startsWith('vmlinuz-'));
      const release = vmlinuz ? vmlinuz.slice('vmlinuz-'.length) : inModules;
      if (!release) throw new Error(`${basename(deb)} (and the packages it depends on) has no /boot/vmlinuz-* nor /usr/lib/modules/*/vmlinuz`);
      await rename(vmlinuz ? join(root, 'boot', vmlinuz) : join(usrModules, release, 'vmlinuz'), join(tmp, 'bzImage'));
      const config = boot.find((f) => f.startsWith('config-'));
      if (config) await rename(join(root, 'boot', config), join(tmp, 'config'));
      else if (existsSync(join(usrModules, release, 'config'))) await rename(join(usrModules, release, 'config'), join(tmp, 'config'));
      // Newer packages ship modules under /usr/lib (merged /usr), older ones under /lib.
      const modules = [join(root, 'usr', 'lib', 'modules', release), join(root, 'lib', 'modules', release)].find((d) => existsSync(d));
      if (!modules) throw new Error(`${basename(deb)} has no lib/modules/${release}`);
      await rename(modules, join(tmp, 'modules'));
      await indexModules(join(tmp, 'modules'), release);
      await rm(root, { recursive: true, force: true });
      await rm(dl, { recursive: true, force: true });
      onProgress?.(`kernel ${name}: ${pkg} ${version} (${release}) cached`);
      return { release, pinned: `${pkg} ${version}` };
    },
  });
  return {
    name,
    release: meta.release,
    version: parseRelease(meta.release),
    bzImage: join(dir, 'bzImage'),
    modulesDir: join(dir, 'modules'),
    pinned: meta.pinned,
  };
}

/** Runs depmod on a lib/modules/<release> tree that lives outside /lib/modules. */
export async function indexModules(modulesDir: string, release: string): Promise<void> {
  // depmod -b wants <base>/lib/modules/<release>; give it a scratch base with a link.
  const base = `${modulesDir}.depmod`;
  await mkdir(join(base, 'lib', 'modules'), { recursive: true });
  const link = join(base, 'lib', 'modules', release);
  await rm(link, { force: true, recursive: true });
  await symlink(resolve(modulesDir), link);
  try {
    await execa(which('depmod'), ['-b', base, release]);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

async function useLocal(name: string, src: LocalSource): Promise<Kernel> {
  if (!existsSync(src.bzImage)) throw new Error(`kernel ${name}: ${src.bzImage} does not exist`);
  const head = (await readFile(src.bzImage)).subarray(0, 64 * 1024);
  let release: string;
  try {
    release = bzImageRelease(head);
  } catch (e) {
    throw new Error(`kernel ${name}: ${src.bzImage} is ${(e as Error).message}; --kernel takes a catalog name, a bzImage or kernel source`);
  }
  let modulesDir: string | null = null;
  if (src.modules) {
    // Accept either lib/modules/<release> itself or a directory holding it.
    const candidates = [src.modules, join(src.modules, release), join(src.modules, 'lib', 'modules', release)];
    modulesDir = candidates.find((d) => existsSync(join(d, 'modules.dep')) || existsSync(join(d, 'modules.order'))) ?? null;
    if (!modulesDir) throw new Error(`kernel ${name}: no modules for ${release} under ${src.modules}`);
    if (!existsSync(join(modulesDir, 'modules.dep'))) {
      // Index a private copy: the user's tree stays untouched.
      const { dir } = await cached({
        area: 'kernels',
        key: contentKey('local-modules', modulesDir, release),
        verify: ['modules/modules.dep'],
        build: async (tmp) => {
          await cp(modulesDir!, join(tmp, 'modules'), { recursive: true, dereference: true });
          await indexModules(join(tmp, 'modules'), release);
          return {};
        },
      });
      modulesDir = join(dir, 'modules');
    }
  }
  return { name, release, version: parseRelease(release), bzImage: src.bzImage, modulesDir, pinned: src.bzImage };
}

/** Resolves a kernel name (or bzImage path) to a bootable, cached kernel. */
export async function getKernel(
  name?: string,
  opts: { modules?: string; onProgress?: Progress; sourcePath?: string; sha256?: string } = {},
): Promise<Kernel> {
  const catalog = loadCatalog();
  const n = name || settings().kernel || catalog.default;
  const src = lookupKernel(n, catalog, opts.modules ?? settings().modules);
  if (src.source === 'debian') return fetchDebian(n, src, opts.onProgress);
  if (src.source === 'tarball' || src.source === 'debian-source' || src.source === 'tree') {
    // Built from source on first use, then cached.
    return buildKernel(n, src, {
      onProgress: opts.onProgress,
      sourcePath: opts.sourcePath ?? settings().kernelSource,
      sha256: opts.sha256 ?? settings().kernelSha256,
    });
  }
  return useLocal(n, src);
}

export interface ModuleIndex {
  /** module name (underscores) -> path relative to the modules dir */
  paths: Map<string, string>;
  /** path -> dependency paths (full closure, as depmod writes it) */
  deps: Map<string, string[]>;
  builtin: Set<string>;
}

const modName = (p: string) => basename(p).replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');

export function parseModulesDep(dep: string, builtin = ''): ModuleIndex {
  const paths = new Map<string, string>();
  const deps = new Map<string, string[]>();
  for (const line of dep.split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const path = line.slice(0, i).trim();
    paths.set(modName(path), path);
    deps.set(path, line.slice(i + 1).trim().split(/\s+/).filter(Boolean));
  }
  const b = new Set(builtin.split('\n').filter(Boolean).map(modName));
  return { paths, deps, builtin: b };
}

/** The module files (paths in the modules directory) the guest image takes: images/recipe.json's list with dependencies. */
export async function imageModules(modulesDir: string): Promise<string[]> {
  const recipe = JSON.parse(await readFile(join(REPO_ROOT, 'images', 'recipe.json'), 'utf8')) as { modules: string[] };
  return loadOrder(await readModuleIndex(modulesDir), recipe.modules).order;
}

export async function readModuleIndex(modulesDir: string): Promise<ModuleIndex> {
  const dep = await readFile(join(modulesDir, 'modules.dep'), 'utf8');
  const builtin = await readFile(join(modulesDir, 'modules.builtin'), 'utf8').catch(() => '');
  return parseModulesDep(dep, builtin);
}

/**
 * The module files to load, dependencies first, for the wanted module names. Names that are built
 * into the kernel are left out; names the kernel has neither way are returned in `missing`.
 */
export function loadOrder(index: ModuleIndex, wanted: string[]): { order: string[]; missing: string[] } {
  const order: string[] = [];
  const seen = new Set<string>();
  const missing: string[] = [];
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    for (const d of index.deps.get(path) ?? []) visit(d);
    order.push(path);
  };
  for (const w of wanted) {
    const n = w.replace(/-/g, '_');
    const path = index.paths.get(n);
    if (path) visit(path);
    else if (!index.builtin.has(n)) missing.push(n);
  }
  return { order, missing };
}
