// The harness's configuration from the environment, in one place: every variable the harness
// reads, with its default, its check and a one-line description (the README's environment table
// is checked against this list by tests/unit/config.test.ts). The variables are read once per
// process, into a frozen object (settings()): a bad value is one error naming the variable and the
// value, raised before anything boots. The CLI starts its settings from the environment and its
// flags (startSettings) and hands the same to the processes it starts (childEnv); none of these
// variables is ever written to process.env (of the system's below, only PATH is, by a test).
import { homedir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';

/** A whole number of at least 1, or an error that names where it came from. */
export function positiveInt(value: string, what: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new Error(`${what} must be a whole number of at least 1, not "${value}"`);
  return Number(value);
}

/** A whole number of 0 or more, or an error that names where it came from. */
export function wholeNumber(value: string, what: string): number {
  if (!/^\d+$/.test(value.trim())) throw new Error(`${what} must be a whole number (0 or more), not "${value}"`);
  return Number(value);
}

type Env = NodeJS.ProcessEnv;

/** One environment variable: its name, what it means, and how its value is read. */
export interface Variable<T> {
  readonly name: string;
  /** One line for the README's table (Markdown). */
  readonly description: string;
  /** Who sets it: the user, or the CLI for the processes it starts (still documented). */
  readonly setBy: 'user' | 'cli' | 'tests';
  /** Its value in `env`, or its default; throws on a bad value. */
  read(env: Env): T;
}

function variable<T>(name: string, description: string, parse: (raw: string | undefined, name: string, env: Env) => T, setBy: Variable<T>['setBy'] = 'user'): Variable<T> {
  return { name, description, setBy, read: (env) => parse(env[name], name, env) };
}

// Parsers: unset and empty are the same (the default), except where an empty value means something.
const text = (raw: string | undefined): string | undefined => raw || undefined;
const textOr = (fallback: () => string) => (raw: string | undefined) => raw || fallback();
const intOr = (fallback: () => number) => (raw: string | undefined, name: string) => (raw ? positiveInt(raw, name) : fallback());
function positiveNumber(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a number above 0, not "${raw}"`);
  return n;
}
function oneOf<T extends string>(...values: T[]) {
  return (raw: string | undefined, name: string): T | undefined => {
    if (raw === undefined || raw === '') return undefined;
    if (!(values as string[]).includes(raw)) throw new Error(`${name} must be ${values.join(' or ')}, not "${raw}"`);
    return raw as T;
  };
}
function flag(raw: string | undefined, name: string): boolean {
  if (raw === undefined || raw === '' || raw === '0') return false;
  if (raw === '1') return true;
  throw new Error(`${name} must be 1 or 0, not "${raw}"`);
}
function sha256Hex(raw: string | undefined, name: string): string | undefined {
  if (!raw) return undefined;
  if (!/^[0-9a-f]{64}$/i.test(raw)) throw new Error(`${name} must be a sha256 sum (64 hex digits), not "${raw}"`);
  return raw.toLowerCase();
}
export const DEFAULT_LSM_APPEND = 'lsm=lockdown,capability,landlock,yama,apparmor,bpf';
export const DEFAULT_DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

const xdgCacheHome = variable('XDG_CACHE_HOME', 'where the cache directory goes when `BPF_HARNESS_CACHE` is not set (default `~/.cache`)', textOr(() => join(homedir(), '.cache')));

/** Every variable the harness reads, in the README's order. */
export const config = {
  // What runs.
  kernel: variable('BPF_HARNESS_KERNEL', 'default kernel (catalog name or bzImage path; default: the catalog\'s default); the CLI sets it for the run\'s suite files', text),
  append: variable('BPF_HARNESS_APPEND', 'added to every guest\'s kernel command line', text),
  lsmAppend: variable('BPF_HARNESS_LSM_APPEND', `the lsm suite's own command line (default \`${DEFAULT_LSM_APPEND}\`; empty: ask for nothing)`, (raw) => raw ?? DEFAULT_LSM_APPEND),
  allowlist: variable('BPF_HARNESS_ALLOWLIST', 'a console allowlist file of your own, used besides `kernels/allowlist/`', text),
  keepSeconds: variable('BPF_HARNESS_KEEP_SECONDS', 'how long a guest kept by `--keep-on-fail` lives at most, in seconds (default 14400: 4 hours)', intOr(() => 4 * 3600)),
  accel: variable('BPF_HARNESS_ACCEL', '`kvm` or `tcg`: skip the accelerator probe', oneOf('kvm', 'tcg')),
  timeoutScale: variable('BPF_HARNESS_TIMEOUT_SCALE', 'a factor on every wait for a guest (boot, SSH server, commands, keepalives; default: this host\'s measured speed factor, at least 1): more on a slow machine', positiveNumber),
  parallel: variable('BPF_HARNESS_PARALLEL', 'guests at once (default: a host core for each vCPU, 2 per guest, and 2 GiB of memory each)', (raw, name) => (raw ? positiveInt(raw, name) : undefined)),
  retries: variable('BPF_HARNESS_RETRIES', 'how many more times a failing suite test runs (default 0), as `--retries` sets it; a test that fails and then passes is flaky', (raw, name) => (raw ? wholeNumber(raw, name) : 0)),
  snapshot: variable('BPF_HARNESS_SNAPSHOT', '`0`: every guest boots, none starts from a saved snapshot of a booted guest (default `1`), as `--no-snapshot` sets it', (raw, name) => (raw === undefined || raw === '' ? true : flag(raw, name))),
  pristine: variable('BPF_HARNESS_PRISTINE', '`1`: every suite file gets a guest of its own, started afresh (from the kernel\'s snapshot), instead of the one the previous file handed on after its reset, as `--pristine` sets it', flag),
  flakyOk: variable('BPF_HARNESS_FLAKY_OK', '`1`: flaky tests do not fail the run (they are still reported as flaky), as `--flaky-ok` sets it', flag),
  // Where things go.
  cache: variable('BPF_HARNESS_CACHE', 'cache directory (default `$XDG_CACHE_HOME/bpf-harness`, i.e. `~/.cache/bpf-harness`)', (raw, _name, env) => raw || join(xdgCacheHome.read(env), 'bpf-harness')),
  xdgCacheHome,
  results: variable('BPF_HARNESS_RESULTS', 'logs and reports (default `results/` in the checkout)', textOr(() => join(REPO_ROOT, 'results'))),
  runDir: variable('BPF_HARNESS_RUN_DIR', 'where a suite run writes its per-kernel record (`kernel-<name>.json`); a kernel matrix sets it for each kernel, and CI shards set it to merge their runs with `report`', text),
  lockWaitSeconds: variable('BPF_HARNESS_LOCK_WAIT_SECONDS', 'how long a run waits for another to finish building a cache entry, in seconds (default 3600)', intOr(() => 3600)),
  // Kernels and images.
  debianMirror: variable('BPF_HARNESS_DEBIAN_MIRROR', 'Debian mirror URL, if the system\'s apt configuration has none', (raw) => raw?.replace(/\/+$/, '') || undefined),
  debianKeyring: variable('BPF_HARNESS_DEBIAN_KEYRING', `the keyring that signs \`BPF_HARNESS_DEBIAN_MIRROR\` (default \`${DEFAULT_DEBIAN_KEYRING}\`)`, textOr(() => DEFAULT_DEBIAN_KEYRING)),
  buildJobs: variable('BPF_HARNESS_BUILD_JOBS', '`make -j` of kernel source builds (default: all cores)', (raw, name) => (raw ? positiveInt(raw, name) : undefined)),
  agentBin: variable('BPF_HARNESS_AGENT_BIN', 'a prebuilt guest agent to put in the image instead of building `images/agent/` (for work on the agent)', text),
  kernelSource: variable('BPF_HARNESS_KERNEL_SOURCE', 'a source kernel\'s tarball or tree, as `--source` sets it', text, 'cli'),
  kernelSha256: variable('BPF_HARNESS_KERNEL_SHA256', 'a source kernel\'s tarball sha256, as `--sha256` sets it', sha256Hex, 'cli'),
  modules: variable('BPF_HARNESS_MODULES', 'the modules directory of a bzImage kernel, as `--modules` sets it', text, 'cli'),
  // Handed by the CLI to the suite files it runs.
  keepOnFail: variable('BPF_HARNESS_KEEP_ON_FAIL', '`1`: the first failing test\'s guest stays up, as `--keep-on-fail` sets it', flag, 'cli'),
  suitesDir: variable('BPF_HARNESS_SUITES_DIR', 'a project\'s own suites folder, as `--dir` sets it (for the reporter)', text, 'cli'),
  // The harness's own tests.
  sourceBuild: variable('BPF_HARNESS_SOURCE_BUILD', '`1`: run the real kernel source build test (`tests/integration/build-real.test.ts`)', flag, 'tests'),
  starvationTest: variable('BPF_HARNESS_STARVATION_TEST', '`1`: run the real starvation test (`tests/integration/starvation.test.ts`: a kernel that stalls, with and without a host that starves its guest; about 2½ minutes)', flag, 'tests'),
  sourceKernel: variable('BPF_HARNESS_SOURCE_KERNEL', 'the kernel that test builds (default `5.10-src`)', textOr(() => '5.10-src'), 'tests'),
} as const;

/**
 * Variables of the system that the harness reads but does not define (not in the README's table):
 * the search path for host tools, the terminal type for a shell, the user for apt's sandbox, and
 * whether this is CI.
 */
export const system = {
  path: (): string => process.env.PATH ?? '',
  setPath: (value: string | undefined): void => {
    if (value === undefined) delete process.env.PATH;
    else process.env.PATH = value;
  },
  term: (): string => process.env.TERM || 'xterm-256color',
  user: (): string => process.env.USER ?? 'nobody',
  ci: (): boolean => Boolean(process.env.CI),
};

export type VariableName = (typeof config)[keyof typeof config]['name'];

/** Every variable, for the README check. */
export const VARIABLES: readonly Variable<unknown>[] = Object.values(config);

export type SettingName = keyof typeof config;

/** Every variable's value, read once: `settings().kernel`, `settings().timeoutScale` (undefined: measure the host). */
export type Settings = { readonly [K in SettingName]: ReturnType<(typeof config)[K]['read']> };

/** Values for variables by their accessor (`{ keepOnFail: '1' }`), as the environment would give them; undefined: unset. */
export type Overrides = Partial<Record<SettingName, string | undefined>>;

/** Every variable read from `env`, once, into a frozen object; the first bad value throws, naming the variable and the value. */
export function resolveSettings(env: Env = process.env): Settings {
  const values: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(config)) values[key] = v.read(env);
  return Object.freeze(values) as Settings;
}

/** The variables' names and values as environment entries (names stay here). */
function asEnv(values: Overrides): Env {
  const env: Env = {};
  for (const [key, value] of Object.entries(values)) env[config[key as SettingName].name] = value;
  return env;
}

interface Resolved {
  /** The environment the settings were read from. */
  env: Env;
  settings: Settings;
  /** What the CLI's flags added: every process it starts gets it too (childEnv). */
  handed: Overrides;
}

/**
 * This process's settings, in one place for every copy of this module in it: vitest loads its
 * reporter and global setup (and their imports) anew beside the CLI that runs it in-process.
 */
const held = ((globalThis as Record<symbol, unknown>)[Symbol.for('bpf-harness.settings')] ??= {}) as { current?: Resolved };

function resolveFrom(env: Env, handed: Overrides): Resolved {
  return { env, settings: resolveSettings(env), handed };
}

/** This process's settings: read from its environment the first time they are asked for, then the same object. */
export function settings(): Settings {
  return (held.current ??= resolveFrom({ ...process.env }, {})).settings;
}

/**
 * The CLI's start: this process's settings from its environment with its flags' values on top,
 * read once before anything reads them (a bad value throws here); the flags' values also go to
 * every process it starts (childEnv). An undefined value leaves the environment's own.
 */
export function startSettings(flags: Overrides): Settings {
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) as Overrides;
  held.current = resolveFrom({ ...process.env, ...asEnv(given) }, given);
  return held.current.settings;
}

/**
 * This process's settings with `overrides` on top of the environment they were read from, until
 * the returned function puts back the ones before (for tests; the processes this one starts do
 * not get them). A bad value throws here and changes nothing.
 */
export function overrideSettings(overrides: Overrides): () => void {
  settings();
  const was = held.current!;
  held.current = resolveFrom({ ...was.env, ...asEnv(overrides) }, was.handed);
  return () => {
    held.current = was;
  };
}

/** Runs `f` with `overrides` on this process's settings (overrideSettings), and puts back the ones before when it ends. */
export function withSettings<T>(overrides: Overrides, f: () => T): T {
  const restore = overrideSettings(overrides);
  let result: T;
  try {
    result = f();
  } catch (e) {
    restore();
    throw e;
  }
  // Any thenable, not only a native Promise: vitest's `expect(p).rejects` gives one of its own.
  if (typeof (result as { then?: unknown } | null)?.then === 'function') return Promise.resolve(result).finally(restore) as T;
  restore();
  return result;
}

/** Whether `env` sets the variable to something (not empty): the environment's own, not a default. */
export const isGiven = (key: SettingName, env: Env = process.env): boolean => Boolean(env[config[key].name]);

/**
 * An environment for a child process: what the CLI's flags added to this process's settings
 * (startSettings), and the given variables by their accessor. Merged into the child's own
 * inherited environment (execa's and vitest's `env`).
 */
export function childEnv(values: Overrides = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(asEnv({ ...(held.current?.handed ?? {}), ...values }))) if (value !== undefined) env[name] = value;
  return env;
}

/** Logs and reports: BPF_HARNESS_RESULTS, or results/ in the checkout. */
export const resultsRoot = (): string => settings().results;

/** The cache directory: BPF_HARNESS_CACHE, or bpf-harness under XDG_CACHE_HOME or ~/.cache. */
export const cacheRoot = (): string => settings().cache;
