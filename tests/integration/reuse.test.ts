// Suite files of one run share a guest: the second file of a worker gets the first one's guest
// (the same boot), returned to how it booted, and cannot see anything the first left behind.
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { hostMs } from '../helpers/timeouts.js';

/** The two reuse fixture files in a vitest of their own; both must pass, and the second must have checked. */
async function runReuseFixtures(env: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'reuse-'));
  const r = await execa(
    join(REPO_ROOT, 'node_modules/.bin/vitest'),
    ['run', '--config', 'tests/fixtures/guest/vitest.config.ts', 'reuse-'],
    { cwd: REPO_ROOT, reject: false, all: true, env: { ...env, BH_REUSE_DIR: dir, FORCE_COLOR: '0' } },
  );
  const out = (r.all ?? '').replace(/\x1b\[[0-9;]*m/g, '');
  expect(r.exitCode, out).toBe(0);
  expect(out).toMatch(/^summary: 2 passed, 0 failed, 0 skipped$/m);
  expect(existsSync(join(dir, 'checked')), 'the second file checked').toBe(true);
  return out;
}

test('the next suite file runs on the same guest and sees nothing the previous file left', async () => {
  const out = await runReuseFixtures();
  // One boot for both files.
  expect(out.match(/SSH ready after/g), out).toHaveLength(1);
}, hostMs(600_000));

test('with --pristine (BPF_HARNESS_PRISTINE=1) the next suite file gets a guest of its own: it does not see even what no reset knows about', async () => {
  const out = await runReuseFixtures({ BPF_HARNESS_PRISTINE: '1' });
  // A guest started for each file.
  expect(out.match(/SSH ready after/g), out).toHaveLength(2);
}, hostMs(600_000));
