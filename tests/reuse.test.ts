// Suite files of one run share a guest: the second file of a worker gets the first one's guest
// (the same boot), returned to how it booted, and cannot see anything the first left behind.
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../harness/base/paths.js';
import { hostMs } from './helpers/timeouts.js';

test('the next suite file runs on the same guest and sees nothing the previous file left', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'reuse-'));
  const r = await execa(
    join(REPO_ROOT, 'node_modules/.bin/vitest'),
    ['run', '--config', 'tests/fixtures/guest/vitest.config.ts', 'reuse-'],
    { cwd: REPO_ROOT, reject: false, all: true, env: { BH_REUSE_DIR: dir, FORCE_COLOR: '0' } },
  );
  const out = (r.all ?? '').replace(/\x1b\[[0-9;]*m/g, '');
  expect(r.exitCode, out).toBe(0);
  expect(out).toMatch(/^summary: 2 passed, 0 failed, 0 skipped$/m);
  // One boot for both files, and the second file did check.
  expect(out.match(/SSH ready after/g), out).toHaveLength(1);
  expect(existsSync(join(dir, 'checked'))).toBe(true);
}, hostMs(600_000));

test('with --pristine (BPF_HARNESS_PRISTINE=1) the next suite file gets a guest of its own: it does not see even what no reset knows about', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pristine-'));
  const r = await execa(
    join(REPO_ROOT, 'node_modules/.bin/vitest'),
    ['run', '--config', 'tests/fixtures/guest/vitest.config.ts', 'reuse-'],
    { cwd: REPO_ROOT, reject: false, all: true, env: { BH_REUSE_DIR: dir, BPF_HARNESS_PRISTINE: '1', FORCE_COLOR: '0' } },
  );
  const out = (r.all ?? '').replace(/\x1b\[[0-9;]*m/g, '');
  expect(r.exitCode, out).toBe(0);
  expect(out).toMatch(/^summary: 2 passed, 0 failed, 0 skipped$/m);
  // A guest started for each file, and the second file did check.
  expect(out.match(/SSH ready after/g), out).toHaveLength(2);
  expect(existsSync(join(dir, 'checked'))).toBe(true);
}, hostMs(600_000));
