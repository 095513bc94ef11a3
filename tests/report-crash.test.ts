// A worker that dies mid-test makes the run red everywhere: the closing summary line, report.md
// and junit.xml all count a failure, and the exit code is not 0.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../harness/paths.js';
import { hostMs } from './helpers/timeouts.js';

test('a crashed worker is a failure in the summary, the Markdown report and JUnit', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'crash-run-'));
  const r = await execa(join(REPO_ROOT, 'node_modules/.bin/vitest'), ['run', '--config', 'tests/fixtures/guest/vitest.config.ts', 'crash'], {
    cwd: REPO_ROOT,
    reject: false,
    all: true,
    env: { BPF_HARNESS_RUN_DIR: dir, FORCE_COLOR: '0' },
  });
  const out = r.all ?? '';
  expect(r.exitCode, out).not.toBe(0);
  const summary = /^summary: (\d+) passed, (\d+) failed, (\d+) skipped/m.exec(out);
  expect(summary, out).not.toBeNull();
  expect(Number(summary![2]), out).toBeGreaterThan(0);
  // The reporter wrote the run's record (no table: BPF_HARNESS_RUN_DIR belongs to a matrix), so render it.
  const { writeReports } = await import('../harness/report.js');
  const rep = writeReports(dir);
  expect(rep.failed).toBe(true);
  expect(await readFile(rep.markdown, 'utf8')).toMatch(/\| crash \| FAIL/);
  expect(await readFile(rep.junit, 'utf8')).toMatch(/failures="[1-9]/);
}, hostMs(600_000));
