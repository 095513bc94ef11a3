// The program type registry: every declaration module of harness/agent/types/ is in it, and each
// attach spec type is taken by one declaration, so attach() and PROGRAM_TYPES list the same types.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { REGISTRY } from '../../harness/agent/types/registry.js';
import { PROGRAM_TYPES } from '../../harness/suite/progtypes.js';

const TYPES = join(REPO_ROOT, 'harness', 'agent', 'types');

test('every declaration a module of harness/agent/types/ exports is in the registry, once', async () => {
  const modules = readdirSync(TYPES).filter((f) => f.endsWith('.ts') && !['declare.ts', 'registry.ts'].includes(f));
  expect(modules.length).toBeGreaterThan(15);
  const declared: unknown[] = [];
  for (const f of modules) {
    const exported = Object.values(await import(join(TYPES, f))).filter((v) => typeof v === 'object' && v !== null && 'name' in v && 'since' in v && 'how' in v);
    expect(exported.length, `${f} declares a program type`).toBeGreaterThan(0);
    declared.push(...exported);
  }
  expect(new Set(REGISTRY)).toEqual(new Set(declared));
  expect(new Set(REGISTRY.map((d) => d.name)).size).toBe(REGISTRY.length);
  expect(Object.keys(PROGRAM_TYPES)).toEqual(REGISTRY.map((d) => d.name));
});

test('each attach spec type is taken by one declaration', () => {
  const specs = REGISTRY.flatMap((d) => ('attach' in d ? ['spec' in d ? d.spec : d.name] : []));
  expect(specs.length).toBeGreaterThan(20);
  expect(specs.filter((s, i) => specs.indexOf(s) !== i)).toEqual([]);
});
