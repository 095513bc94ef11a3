// What the CLI's flags set, as the variables would: the run's settings (read once, startSettings)
// and the environment of the processes it starts (childEnv), never process.env. Host only, but it
// imports the CLI, which the unit project does not (tests/unit/layers.test.ts).
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { childEnv, overrideSettings, resolveSettings, settings, startSettings } from '../../harness/base/config.js';
import { flagSettings } from '../../harness/cli/main.js';
import { parseCommandLine } from '../../harness/cli/options.js';

const flags = (...argv: string[]) => {
  const { command, values } = parseCommandLine(argv);
  if (command === 'help') throw new Error('not a command');
  return flagSettings(command, values, '/work/here');
};

test('suite: each flag is the variable it stands for; one kernel named is the run\'s kernel', () => {
  expect(flags('suite', 'xdp', '--kernel', '5.10', '--keep-on-fail', '--retries', '2', '--flaky-ok', '--pristine', '--no-snapshot', '--modules', '/m')).toEqual({
    kernelSource: undefined,
    kernelSha256: undefined,
    snapshot: '0',
    keepOnFail: '1',
    retries: '2',
    flakyOk: '1',
    pristine: '1',
    modules: '/m',
    kernel: '5.10',
  });
  // A matrix's runs are each told their kernel; the parent has none.
  expect(flags('suite', 'xdp', '--kernels', '5.10,6.1').kernel).toBeUndefined();
  expect(flags('suite', 'xdp').kernel).toBeUndefined();
  expect(() => flags('suite', 'xdp', '--retries', 'twice')).toThrow('--retries must be a whole number (0 or more), not "twice"');
  expect(() => flags('suite', 'xdp', '--sha256', 'abc')).toThrow('--sha256 must be a sha256 sum (64 hex digits), not "abc"');
});

test('--dir: the reporter\'s suites folder, and results beside the user unless BPF_HARNESS_RESULTS says', () => {
  const restore = overrideSettings({});
  try {
    const o = flags('suite', '--dir', 'bpf-tests', 'udp');
    expect(o.suitesDir).toBe(join(process.cwd(), 'bpf-tests'));
    if (!process.env.BPF_HARNESS_RESULTS) expect(o.results).toBe('/work/here/results');
    // The run's settings and what its children get, with process.env as it was.
    const env = { ...process.env };
    startSettings(o);
    expect(settings().suitesDir).toBe(o.suitesDir);
    expect(childEnv()).toMatchObject({ BPF_HARNESS_SUITES_DIR: o.suitesDir });
    expect(resolveSettings({ ...process.env, ...childEnv() }).suitesDir).toBe(o.suitesDir);
    expect(process.env).toEqual(env);
  } finally {
    restore();
  }
});
