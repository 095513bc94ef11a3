// Every 4.14-era program type has its suite, named after it, with at least two tests; suites use
// the harness only through its public surface (harness/index.ts), as a user's project does.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../../harness/kernels/catalog.js';
import { PROGRAM_TYPES } from '../../harness/suite/progtypes.js';

test.each(Object.keys(PROGRAM_TYPES))('program type %s has a suite with at least two tests', (type) => {
  const file = join(REPO_ROOT, 'suites', type, `${type}.test.ts`);
  expect(existsSync(file), file).toBe(true);
  const text = readFileSync(file, 'utf8');
  expect(text).toMatch(new RegExp(`useGuest\\(\\{[\\s\\S]*?suite: '${type}'`));
  // One match per test call, whether its name is a string or a template literal.
  expect((text.match(/^\s*(test|it)(\.each\([^)]*\))?\(/gm) ?? []).length).toBeGreaterThanOrEqual(2);
});

test('suite files import the harness only through harness/index.js, the surface a project that depends on it gets', () => {
  const files = readdirSync(join(REPO_ROOT, 'suites'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  expect(files.length).toBeGreaterThan(20);
  const inner = files.flatMap((f) =>
    [...readFileSync(join(REPO_ROOT, 'suites', f), 'utf8').matchAll(/from '([^']*harness\/[^']*)'/g)].map((m) => m[1]).filter((p) => !p.endsWith('/harness/index.js')).map((p) => `${f}: ${p}`),
  );
  expect(inner).toEqual([]);
});
