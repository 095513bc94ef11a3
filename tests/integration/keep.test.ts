// --keep-on-fail: the guest of the first failing test stays up after the run, as the test left it
// (no reset), owned by its keeper; `npm run shell -- --stop ID` ends it and nothing is left.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { listKept } from '../../harness/guest/kept.js';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { alive } from '../helpers/processes.js';
import { SshSession } from '../../harness/guest/ssh.js';
import { cli } from '../helpers/cli.js';
import { hostMs } from '../helpers/timeouts.js';


test('the first failing test\'s guest is kept as it left it, and --stop ends it', async () => {
  const r = await execa(
    join(REPO_ROOT, 'node_modules/.bin/vitest'),
    ['run', '--config', 'tests/fixtures/guest/vitest.config.ts', 'keep'],
    { cwd: REPO_ROOT, reject: false, all: true, env: { BPF_HARNESS_KEEP_ON_FAIL: '1', FORCE_COLOR: '0' } },
  );
  const out = r.all ?? '';
  expect(r.exitCode, out).not.toBe(0);
  expect(out).toMatch(/^summary: 0 passed, 2 failed, 0 skipped$/m);
  const id = /kept the guest of "leaves-state: [^"]*" .*: id (\S+)/.exec(out)?.[1];
  expect(id, out).toBeTruthy();
  expect(out).toContain(`npm run shell -- --attach ${id}`);
  expect(out).toContain(`npm run shell -- --stop ${id}`);

  // The run is over (vitest and its workers exited), and the guest is still up, kept once.
  const kept = listKept().filter((k) => k.id === id);
  expect(kept).toHaveLength(1);
  expect(listKept().filter((k) => k.test.startsWith('second'))).toEqual([]);
  const [k] = kept;
  expect(alive(k.keeperPid!) && alive(k.qemuPid!)).toBe(true);

  // In the state the test left it: its file and its device are there (no reset ran).
  const ssh = await SshSession.connect({ port: k.sshPort, privateKey: await readFile(k.keyPath, 'utf8'), hostKey: k.hostKey });
  try {
    expect((await ssh.exec('cat /tmp/left')).trim()).toBe('left-by-the-test');
    expect(await ssh.exec('ip -o link show bhkeep0')).toMatch(/bhkeep0/);
    expect((await ssh.run('test -e /tmp/second')).code).not.toBe(0);
  } finally {
    ssh.close();
  }

  const stop = await cli(['shell', '--stop', id!]);
  expect(stop.exitCode, stop.all).toBe(0);
  expect(alive(k.keeperPid!)).toBe(false);
  expect(alive(k.qemuPid!)).toBe(false);
  expect(existsSync(k.registry)).toBe(false);
}, hostMs(600_000));
