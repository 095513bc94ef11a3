// No QEMU outlives the process that started it, whatever signal ends that process and whatever
// launched it (split from vm.test.ts so that the two files run side by side).
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { REPO_ROOT } from '../../harness/kernels/catalog.js';
import { alive, waitGone } from '../helpers/processes.js';
import { hostMs } from '../helpers/timeouts.js';

/** Runs tests/fixtures/boot-and-wait.ts under `argv`; resolves with the pid it prints once its guest is up. */
function bootAndWait(argv: string[], env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(argv[0], [...argv.slice(1), join(REPO_ROOT, 'tests/fixtures/boot-and-wait.ts')], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'], env });
  const ready = new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`boot-and-wait exited with ${code} before the guest was up:\n${out}`)));
  });
  return { child, ready };
}

describe('no QEMU outlives the process that started it', () => {
  const launchers = {
    // One node process: QEMU is its child (setpriv --pdeathsig covers SIGKILL).
    node: [process.execPath, '--import', 'tsx'],
    // A wrapper process in between, as with npm or the tsx binary: the orphan watch covers SIGKILL.
    'tsx wrapper': [join(REPO_ROOT, 'node_modules/.bin/tsx')],
  };
  for (const [launcher, argv] of Object.entries(launchers)) {
    for (const signal of ['SIGKILL', 'SIGINT', 'SIGTERM'] as const) {
      test(`${signal} to the harness process (${launcher})`, async () => {
        const { child, ready } = bootAndWait(argv);
        const qemuPid = await ready;
        expect(alive(qemuPid)).toBe(true);
        process.kill(child.pid!, signal);
        expect(await waitGone(qemuPid, hostMs(10_000))).toBe(true);
      }, hostMs(180_000));
    }
  }
});

test('SIGKILL to the harness process of a keepable guest (--keep-on-fail) that was not kept: its keeper ends QEMU', async () => {
  const { child, ready } = bootAndWait([process.execPath, '--import', 'tsx'], { ...process.env, BPF_HARNESS_KEEP_ON_FAIL: '1' });
  const keeperPid = await ready;
  const qemuPid = Number((await readFile(`/proc/${keeperPid}/task/${keeperPid}/children`, 'utf8')).trim().split(/\s+/)[0]);
  expect(qemuPid).toBeGreaterThan(0);
  expect(alive(qemuPid)).toBe(true);
  process.kill(child.pid!, 'SIGKILL');
  expect(await waitGone(keeperPid, hostMs(10_000))).toBe(true);
  expect(await waitGone(qemuPid, hostMs(10_000))).toBe(true);
}, hostMs(180_000));

