// The catalog's types: where a kernel comes from (Debian packages, a local bzImage, kernel source
// to build) and what a resolved kernel is; and kernel versions. A module of its own, so that the
// catalog (catalog.ts), the source builds (build.ts) and apt share them without importing each other.

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

export interface DebianSource {
  source: 'debian';
  suite: string;
  /** A package name; a metapackage (linux-image-cloud-amd64) is resolved to the image it depends on. */
  package: string;
  description?: string;
}

export interface LocalSource {
  source: 'local';
  bzImage: string;
  modules?: string;
  description?: string;
}

/** Debian packages, a local bzImage, or kernel source built here (harness/kernels/build.ts). */
export type KernelSource = DebianSource | LocalSource | BuildSource;

export interface Catalog {
  default: string;
  kernels: Record<string, KernelSource>;
}

/** A kernel ready to boot. */
export interface Kernel {
  /** Catalog name or path given by the user. */
  name: string;
  /** `uname -r` of the kernel. */
  release: string;
  /** major.minor.patch, for feature checks. */
  version: [number, number, number];
  bzImage: string;
  /** lib/modules/<release> with modules.dep, or null for a kernel with everything built in. */
  modulesDir: string | null;
  /** What it resolved to, e.g. "linux-image-6.1.0-50-cloud-amd64 6.1.176-1". */
  pinned: string;
}

/** Parses "6.1.0-50-cloud-amd64" or "5.10.223" into [6, 1, 0]. */
export function parseRelease(release: string): [number, number, number] {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release);
  if (!m) throw new Error(`cannot read a kernel version from "${release}"`);
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

export function atLeast(v: [number, number, number], want: string): boolean {
  const w = parseRelease(want);
  for (let i = 0; i < 3; i++) if (v[i] !== w[i]) return v[i] > w[i];
  return true;
}

export type Progress = (msg: string) => void;
