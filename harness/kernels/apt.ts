// A private apt state per Debian suite, used to fetch kernel packages as the current user without
// touching the system's apt state. The mirror is read from the system's apt configuration (or
// BPF_HARNESS_DEBIAN_MIRROR); apt verifies every download against the suite's signed Release.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { cacheRoot, sha256File, withLock } from '../base/cache.js';
import { DEFAULT_DEBIAN_KEYRING, settings, system } from '../base/config.js';
import type { DebianSource, Progress } from './types.js';
import { type Pin, readLock } from './pins.js';
import { which } from '../base/tools.js';

export interface Mirror {
  uri: string;
  keyring: string;
}

const DEFAULT_KEYRING = DEFAULT_DEBIAN_KEYRING;
const DEBIAN_SUITES = /^(buster|bullseye|bookworm|trixie|forky|sid|unstable|testing|stable|oldstable)(-updates|-backports)?$/;

interface SourceEntry {
  uris: string[];
  suites: string[];
  components: string[];
  signedBy?: string;
}

/** Parses deb822 `.sources` text. */
export function parseDeb822(text: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  for (const para of text.split(/\n\s*\n/)) {
    const fields: Record<string, string> = {};
    let last = '';
    for (const line of para.split('\n')) {
      if (line.startsWith('#')) continue;
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m) {
        last = m[1].toLowerCase();
        fields[last] = m[2];
      } else if (/^\s/.test(line) && last) fields[last] += '\n' + line.trim();
    }
    if (!fields.uris || (fields.types && !fields.types.split(/\s+/).includes('deb'))) continue;
    if (fields.enabled && fields.enabled.trim() === 'no') continue;
    out.push({
      uris: fields.uris.split(/\s+/).filter(Boolean),
      suites: (fields.suites ?? '').split(/\s+/).filter(Boolean),
      components: (fields.components ?? '').split(/\s+/).filter(Boolean),
      signedBy: fields['signed-by']?.includes('/') && !fields['signed-by'].includes('\n') ? fields['signed-by'].trim() : undefined,
    });
  }
  return out;
}

/** Parses one-line `deb [opts] uri suite components` text. */
export function parseOneLine(text: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const signed = /signed-by=(\S+)/.exec(m[1] ?? '');
    out.push({ uris: [m[2]], suites: [m[3]], components: m[4].split(/\s+/).filter(Boolean), signedBy: signed?.[1] });
  }
  return out;
}

/** The Debian mirror this machine's apt uses for its main archive (not security). */
export function systemMirror(etc = '/etc/apt'): Mirror {
  const env = settings().debianMirror;
  if (env) return { uri: env, keyring: settings().debianKeyring };
  const entries: SourceEntry[] = [];
  const list = join(etc, 'sources.list');
  if (existsSync(list)) entries.push(...parseOneLine(readFileSync(list, 'utf8')));
  const dir = join(etc, 'sources.list.d');
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).sort()) {
      const text = readFileSync(join(dir, f), 'utf8');
      if (f.endsWith('.sources')) entries.push(...parseDeb822(text));
      else if (f.endsWith('.list')) entries.push(...parseOneLine(text));
    }
  }
  for (const e of entries) {
    if (!e.components.includes('main')) continue;
    if (!e.suites.some((s) => DEBIAN_SUITES.test(s))) continue;
    const uri = e.uris.find((u) => /^(https?|file):/.test(u) && !/security/.test(u));
    if (uri) return { uri: uri.replace(/\/+$/, ''), keyring: e.signedBy ?? DEFAULT_KEYRING };
  }
  throw new Error(
    `no Debian main archive found in ${etc}/sources.list or ${etc}/sources.list.d; set BPF_HARNESS_DEBIAN_MIRROR to the mirror's URL`,
  );
}

/** A private apt state for one suite. */
export class AptSuite {
  readonly root: string;
  constructor(
    readonly suite: string,
    readonly mirror: Mirror = systemMirror(),
  ) {
    this.root = join(cacheRoot(), 'apt', suite);
  }

  private opts(): string[] {
    const r = this.root;
    return [
      `-o`, `Dir::State=${r}/state`,
      `-o`, `Dir::State::Lists=${r}/lists`,
      `-o`, `Dir::State::status=${r}/status`,
      `-o`, `Dir::Cache=${r}/cache`,
      `-o`, `Dir::Etc::SourceList=${r}/sources.list`,
      `-o`, `Dir::Etc::SourceParts=${r}/sources.list.d`,
      `-o`, `Dir::Etc::Preferences=${r}/preferences`,
      `-o`, `Dir::Etc::PreferencesParts=${r}/preferences.d`,
      // Downloads run as the current user: no privilege drop to _apt.
      `-o`, `APT::Sandbox::User=${process.getuid?.() === 0 ? 'root' : system.user()}`,
      `-o`, `Debug::NoLocking=1`,
      `-o`, `APT::Architecture=amd64`,
      `-o`, `APT::Architectures::=amd64`,
      `-q`,
    ];
  }

  private async prepare(): Promise<void> {
    const r = this.root;
    for (const d of ['state', 'lists/partial', 'cache/archives/partial', 'sources.list.d', 'preferences.d']) {
      await mkdir(join(r, d), { recursive: true });
    }
    await writeFile(join(r, 'status'), '', { flag: 'a' });
    await writeFile(join(r, 'sources.list'), `deb [signed-by=${this.mirror.keyring}] ${this.mirror.uri} ${this.suite} main\n`);
  }

  /** Runs `apt-get update` when the lists are missing or older than maxAgeMs. */
  async update(maxAgeMs = 24 * 3600_000, onProgress?: (m: string) => void): Promise<void> {
    await this.prepare();
    // apt gives list files the server's modification time, so freshness is kept in a stamp.
    const stamp = join(this.root, 'updated');
    const fresh = async () => (await stat(stamp).then((s) => Date.now() - s.mtimeMs, () => Infinity)) < maxAgeMs;
    if (await fresh()) return;
    // One update of this private apt state at a time (two runs fetching a suite for the first time
    // at once would trip over each other's partial lists); the second finds the lists fresh.
    await withLock(`${this.root}.lock`, `apt lists of ${this.suite}`, async () => {
      if (await fresh()) return;
      onProgress?.(`apt: updating package lists for ${this.suite}`);
      const r = await execa(which('apt-get'), [...this.opts(), 'update'], { stdin: 'ignore', reject: false, all: true });
      const haveLists = (await readdir(join(this.root, 'lists'))).some((f) => f.endsWith('_Packages'));
      if (r.exitCode !== 0 || /^(W|E): /m.test(r.all ?? '')) {
        // Offline with lists from an earlier run: go on with those, say so.
        if (!haveLists) throw new Error(`apt-get update for Debian ${this.suite} failed:\n${r.all}`);
        onProgress?.(`apt: update for ${this.suite} failed, using the package lists from an earlier run`);
        return;
      }
      // Build apt's package cache now, under the lock, not in two readers at once.
      await execa(which('apt-cache'), [...this.opts(), 'stats'], { stdin: 'ignore', reject: false });
      await writeFile(stamp, new Date().toISOString());
    }, onProgress);
  }

  /** `apt-cache show` fields of the candidate version of a package. */
  async show(pkg: string): Promise<Record<string, string>> {
    const { stdout } = await execa(which('apt-cache'), [...this.opts(), 'show', '--no-all-versions', pkg], { stdin: 'ignore' });
    const fields: Record<string, string> = {};
    for (const line of stdout.split('\n')) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m) fields[m[1]] = m[2];
    }
    return fields;
  }

  /** Downloads one exact package version into `dir`; apt checks it against the signed index. */
  async download(pkg: string, version: string, dir: string): Promise<string> {
    await execa(which('apt-get'), [...this.opts(), 'download', `${pkg}=${version}`], { cwd: dir, stdin: 'ignore' });
    const deb = (await readdir(dir)).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg}=${version} produced no .deb in ${dir}`);
    return join(dir, deb);
  }

  /**
   * Downloads one package into `dir`, checks it against `sha256` (the archive index's, from the
   * pin) when given, and unpacks it into `root`; returns the .deb's path.
   */
  async unpack(pkg: string, version: string, sha256: string | undefined, dir: string, root: string): Promise<string> {
    await mkdir(dir, { recursive: true });
    const deb = await this.download(pkg, version, dir);
    if (sha256 && (await sha256File(deb)) !== sha256) throw new Error(`${basename(deb)}: sha256 does not match the archive index`);
    await execa(which('dpkg-deb'), ['-x', deb, root]);
    return deb;
  }
}

/** The newest image package a Debian catalog entry resolves to (a metapackage is followed). */
export async function resolveDebian(name: string, src: DebianSource, onProgress?: Progress): Promise<Pin> {
  const apt = new AptSuite(src.suite);
  await apt.update(24 * 3600_000, onProgress);
  let fields = await apt.show(src.package).catch(() => ({}) as Record<string, string>);
  if (!fields.Package) throw new Error(`kernel ${name}: package ${src.package} not found in Debian ${src.suite}`);
  // A metapackage depends on exactly one versioned image package.
  const dep = /(linux-image-[^\s,(]+)\s*\(=\s*([^)]+)\)/.exec(fields.Depends ?? '');
  if (!fields.Package.match(/^linux-image-\d/) && dep) fields = await apt.show(`${dep[1]}=${dep[2]}`);
  return { suite: src.suite, from: src.package, package: fields.Package, version: fields.Version, sha256: fields.SHA256 ?? '' };
}

/**
 * The package a Debian catalog entry (a kernel, or a source package to build) stands for: its pin
 * in kernels/lock.json, or the newest when it has no pin. A pin is taken as it is: whether Debian
 * still serves it matters only for a download (pinServed), not for a kernel already cached.
 */
export async function debianPin(name: string, src: DebianSource, onProgress?: Progress): Promise<Pin> {
  const locked = readLock()[name];
  if (!locked || locked.suite !== src.suite || locked.from !== src.package) return resolveDebian(name, src, onProgress);
  return locked;
}

/** Before a pinned package is downloaded: fails, saying what to do, when Debian no longer serves it. */
export async function pinServed(name: string, pin: Pin, onProgress?: Progress): Promise<void> {
  const apt = new AptSuite(pin.suite);
  await apt.update(24 * 3600_000, onProgress);
  const have = await apt.show(`${pin.package}=${pin.version}`).catch(() => ({}) as Record<string, string>);
  if (!have.Package) {
    throw new Error(
      `kernel ${name} is pinned to ${pin.package} ${pin.version} (kernels/lock.json), which Debian ${pin.suite} no longer serves; ` +
        `run \`npm run kernels -- lock ${name}\` to pin the newest`,
    );
  }
}
