// The compiled harness (bin/build.mjs): when dist/ counts as stale, and what a copy without
// TypeScript (an installed package) does with the build it came with. The compile itself runs in
// every test run: the integration project's global setup and npm install's prepare run it.
import { cp, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../../harness/base/paths.js';

test('dist/ is stale with no build, fresh after one, stale again when a harness source is newer, new or gone; without TypeScript the build it has is used', async () => {
  const pkg = await mkdtemp(join(tmpdir(), 'pkg-build-'));
  try {
    await cp(join(REPO_ROOT, 'bin'), join(pkg, 'bin'), { recursive: true });
    await mkdir(join(pkg, 'harness', 'cli'), { recursive: true });
    for (const f of ['tsconfig.json', 'tsconfig.build.json']) await writeFile(join(pkg, f), '{}\n');
    await writeFile(join(pkg, 'harness', 'cli', 'main.ts'), 'export {};\n');
    const build = await import(join(pkg, 'bin', 'build.mjs'));
    expect(build.staleBecause()).toBe('there is no build yet');

    // A build: dist/cli.js and the stamp, newer than every source.
    await mkdir(join(pkg, 'dist', 'cli'), { recursive: true });
    await writeFile(join(pkg, 'dist', 'cli', 'main.js'), 'export {};\n');
    await writeFile(join(pkg, 'dist', '.built'), 'now\n');
    const past = new Date(Date.now() - 60_000);
    for (const f of ['tsconfig.json', 'tsconfig.build.json', 'harness/cli/main.ts']) await utimes(join(pkg, f), past, past);
    expect(build.staleBecause()).toBeUndefined();

    // A source moved in keeps its old time: it is new to the build all the same.
    await writeFile(join(pkg, 'harness', 'cli', 'suite.ts'), 'export {};\n');
    await utimes(join(pkg, 'harness', 'cli', 'suite.ts'), past, past);
    expect(build.staleBecause()).toBe('harness/cli/suite.ts is new');
    await writeFile(join(pkg, 'dist', 'cli', 'suite.js'), 'export {};\n');
    expect(build.staleBecause()).toBeUndefined();
    // The output of a source moved away or removed (tsc leaves it).
    await writeFile(join(pkg, 'dist', 'cli', 'old.js'), 'export {};\n');
    expect(build.staleBecause()).toBe('the source of dist/cli/old.js is gone');
    await rm(join(pkg, 'dist', 'cli', 'old.js'));

    const later = new Date(Date.now() + 60_000);
    await utimes(join(pkg, 'harness', 'cli', 'suite.ts'), later, later);
    expect(build.staleBecause()).toBe('harness/cli/suite.ts changed');

    // No TypeScript here (as in an installed package): the build it has is used as it is ...
    expect(() => build.ensureBuilt()).not.toThrow();
    // ... and without one, the error says what to do.
    await rm(join(pkg, 'dist', 'cli', 'main.js'));
    expect(() => build.ensureBuilt()).toThrow(/there is no compiled harness in .*\/dist, and no TypeScript to build it with \(npm install, then npm run build\)/);
  } finally {
    await rm(pkg, { recursive: true, force: true });
  }
});

test('the build in this checkout is as new as its sources (the integration project compiled it)', async () => {
  const { staleBecause } = await import('../../bin/build.mjs');
  expect(staleBecause()).toBeUndefined();
});
