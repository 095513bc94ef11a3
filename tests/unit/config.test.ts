import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { expect, test } from 'vitest';
import { childEnv, overrideSettings, resolveSettings, settings, startSettings, VARIABLES, withSettings } from '../../harness/base/config.js';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { DEFAULT_CPUS } from '../../harness/guest/boot-command.js';
import { guestBudget } from '../../harness/suite/config.js';
import vitestConfig from '../../vitest.config.js';

/** The README's environment table: variable name -> description. */
function readmeTable(): Map<string, string> {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('| variable | meaning |');
  expect(start, 'the README has an environment table (| variable | meaning |)').toBeGreaterThan(0);
  const rows = new Map<string, string>();
  for (const line of readme.slice(start).split('\n').slice(2)) {
    const m = /^\| `([A-Z0-9_]+)` \| (.*) \|$/.exec(line);
    if (!m) break;
    rows.set(m[1], m[2]);
  }
  return rows;
}

test('the README\'s environment table lists exactly the variables of harness/base/config.ts, with their descriptions', () => {
  const table = readmeTable();
  const known = new Map(VARIABLES.map((v) => [v.name, v.description]));
  const missing = [...known.keys()].filter((n) => !table.has(n));
  const unknown = [...table.keys()].filter((n) => !known.has(n));
  expect(missing, `variables of harness/base/config.ts missing from the README's table; add:\n${missing.map((n) => `| \`${n}\` | ${known.get(n)} |`).join('\n')}`).toEqual([]);
  expect(unknown, 'variables in the README\'s table that harness/base/config.ts does not know').toEqual([]);
  for (const [name, description] of known) expect(table.get(name), `README row of ${name}`).toBe(description);
});

const harnessSources = (dir = join(REPO_ROOT, 'harness')): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? harnessSources(join(dir, e.name)) : /\.(ts|mjs)$/.test(e.name) ? [join(dir, e.name)] : []));

test('harness/base/config.ts is the only module of the harness that reads or sets the environment', () => {
  const offenders = harnessSources()
    .filter((f) => !f.endsWith('harness/base/config.ts'))
    .flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .map((line, i) => ({ where: `${relative(REPO_ROOT, f)}:${i + 1}`, line }))
        .filter(({ line }) => /process\.env\b/.test(line) && !/^\s*(\/\/|\*)/.test(line)),
    );
  expect(offenders.map((o) => `${o.where}: ${o.line.trim()}`)).toEqual([]);
});

test.each([
  ['BPF_HARNESS_PARALLEL', 'abc', 'BPF_HARNESS_PARALLEL must be a whole number of at least 1, not "abc"'],
  ['BPF_HARNESS_BUILD_JOBS', '0', 'BPF_HARNESS_BUILD_JOBS must be a whole number of at least 1, not "0"'],
  ['BPF_HARNESS_KEEP_SECONDS', 'forever', 'BPF_HARNESS_KEEP_SECONDS must be a whole number of at least 1, not "forever"'],
  ['BPF_HARNESS_LOCK_WAIT_SECONDS', '1.5', 'BPF_HARNESS_LOCK_WAIT_SECONDS must be a whole number of at least 1, not "1.5"'],
  ['BPF_HARNESS_TIMEOUT_SCALE', '-2', 'BPF_HARNESS_TIMEOUT_SCALE must be a number above 0, not "-2"'],
  ['BPF_HARNESS_ACCEL', 'hvf', 'BPF_HARNESS_ACCEL must be kvm or tcg, not "hvf"'],
  ['BPF_HARNESS_KEEP_ON_FAIL', 'yes', 'BPF_HARNESS_KEEP_ON_FAIL must be 1 or 0, not "yes"'],
  ['BPF_HARNESS_RETRIES', 'twice', 'BPF_HARNESS_RETRIES must be a whole number (0 or more), not "twice"'],
  ['BPF_HARNESS_FLAKY_OK', 'yes', 'BPF_HARNESS_FLAKY_OK must be 1 or 0, not "yes"'],
  ['BPF_HARNESS_KERNEL_SHA256', 'abc', 'BPF_HARNESS_KERNEL_SHA256 must be a sha256 sum (64 hex digits), not "abc"'],
])('a bad %s (%s) is one error naming the variable and the value', (name, value, message) => {
  expect(() => resolveSettings({ [name]: value })).toThrow(message);
});

test('defaults: unset and empty mean the default; BPF_HARNESS_LSM_APPEND= (empty) asks for nothing', () => {
  const s = resolveSettings({});
  expect(s.keepSeconds).toBe(4 * 3600);
  // Unset: the host's measured speed factor (harness/base/host-speed.ts).
  expect(s.timeoutScale).toBeUndefined();
  expect(s.lockWaitSeconds).toBe(3600);
  expect(s.keepOnFail).toBe(false);
  expect(s.retries).toBe(0);
  expect(s.flakyOk).toBe(false);
  expect(s.results).toBe(join(REPO_ROOT, 'results'));
  expect(resolveSettings({ XDG_CACHE_HOME: '/x' }).cache).toBe('/x/bpf-harness');
  expect(s.lsmAppend).toMatch(/^lsm=.*bpf$/);
  expect(resolveSettings({ BPF_HARNESS_LSM_APPEND: '' }).lsmAppend).toBe('');
});

test('settings are read once into a frozen object; overrides and the CLI\'s flags never touch process.env', () => {
  const env = { ...process.env };
  const s = settings();
  expect(settings()).toBe(s);
  expect(Object.isFrozen(s)).toBe(true);
  // A test's override, and what puts back the settings before it.
  expect(withSettings({ keepOnFail: '1', timeoutScale: '0.5' }, () => [settings().keepOnFail, settings().timeoutScale])).toEqual([true, 0.5]);
  expect(settings()).toBe(s);
  expect(() => overrideSettings({ keepOnFail: 'yes' })).toThrow('BPF_HARNESS_KEEP_ON_FAIL must be 1 or 0, not "yes"');
  expect(settings()).toBe(s);
  // The CLI's start: its flags on top of the environment, and handed to the processes it starts.
  const restore = overrideSettings({});
  try {
    startSettings({ keepOnFail: '1', retries: '2', modules: undefined });
    expect([settings().keepOnFail, settings().retries]).toEqual([true, 2]);
    expect(childEnv({ runDir: '/r' })).toEqual({ BPF_HARNESS_KEEP_ON_FAIL: '1', BPF_HARNESS_RETRIES: '2', BPF_HARNESS_RUN_DIR: '/r' });
  } finally {
    restore();
  }
  expect(settings()).toBe(s);
  expect(childEnv({ runDir: '/r' })).toEqual({ BPF_HARNESS_RUN_DIR: '/r' });
  expect(process.env).toEqual(env);
});

test('the guest budget is computed one way: a host core for each vCPU and 2 GiB each, or BPF_HARNESS_PARALLEL; vitest.config.ts uses it', () => {
  const expected = Math.max(1, Math.min(Math.floor(availableParallelism() / DEFAULT_CPUS), Math.floor(totalmem() / 2 ** 31)));
  expect(withSettings({ parallel: undefined }, guestBudget)).toBe(expected);
  expect(withSettings({ parallel: '3' }, guestBudget)).toBe(3);
  // The suites project of vitest.config.ts (loaded with this process's environment when the run started).
  const projects = (vitestConfig as { test: { projects: { test: { name: string; maxWorkers?: number } }[] } }).test.projects;
  const suites = projects.find((p) => p.test.name === 'suites')!;
  expect(suites.test.maxWorkers).toBe(settings().parallel ?? expected);
  // Nobody else computes it: the cores and memory are read in suite/config.ts (and kernels/build.ts for
  // make -j, host-speed.ts for its benchmark's threads, vcpu-time.ts for its message's core count).
  const readers = harnessSources().filter((f) => /totalmem\(|availableParallelism\(/.test(readFileSync(f, 'utf8')));
  expect(readers.map((f) => relative(REPO_ROOT, f)).sort()).toEqual(['harness/base/host-speed.ts', 'harness/guest/vcpu-time.ts', 'harness/kernels/build.ts', 'harness/suite/config.ts']);
  expect(readFileSync(join(REPO_ROOT, 'vitest.config.ts'), 'utf8')).not.toMatch(/totalmem|availableParallelism|maxWorkers/);
});

test('an override lasts until what it runs has settled, a thenable that is not a Promise too (vitest\'s expect(p).rejects)', async () => {
  const s = settings();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const seen: number[] = [];
  // A thenable of its own, as vitest's `.rejects` gives: not instanceof Promise.
  const thenable = { then: (ok: (v: number) => void, bad: (e: unknown) => void) => gate.then(() => seen.push(settings().lockWaitSeconds)).then(() => ok(1), bad) };
  const done = withSettings({ lockWaitSeconds: '7' }, () => thenable);
  expect(settings().lockWaitSeconds).toBe(7);
  release();
  await done;
  expect(seen).toEqual([7]);
  expect(settings()).toBe(s);
});
