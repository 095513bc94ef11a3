// The rooms of harness/: each folder imports only from the folders below it in LAYERS, and no
// module imports itself back through others (no import cycle). Read from the sources' import lines.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../../harness/base/paths.js';

const HARNESS = join(REPO_ROOT, 'harness');
/** Lowest first. report/ and guest/ are side by side: neither imports the other. */
const LAYERS: Record<string, number> = { base: 0, kernels: 1, guest: 2, report: 2, agent: 3, suite: 4, cli: 5, '.': 6 };

function modules(): string[] {
  return readdirSync(HARNESS, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(HARNESS, f));
}

/** The harness modules a module imports (static and dynamic, types included). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => resolve(dirname(file), s).replace(/\.js$/, '.ts'));
}

const room = (file: string) => {
  const rel = relative(HARNESS, file);
  return rel.includes('/') ? rel.split('/')[0] : '.';
};

test('harness/ has its folders, and its top holds only the public surface and the CLI entry', () => {
  const rooms = new Set(modules().map(room));
  for (const r of Object.keys(LAYERS)) expect(rooms, `harness/${r}/`).toContain(r);
  expect(modules().filter((f) => room(f) === '.').map((f) => relative(HARNESS, f))).toEqual(['index.ts']);
});

test('every import goes down a layer or stays in its folder', () => {
  const up: string[] = [];
  for (const f of modules()) {
    for (const t of importsOf(f)) {
      if (!t.startsWith(HARNESS)) continue;
      const [a, b] = [room(f), room(t)];
      if (a !== b && LAYERS[b] >= LAYERS[a]) up.push(`${relative(HARNESS, f)} -> ${relative(HARNESS, t)}`);
    }
  }
  expect(up).toEqual([]);
});

test('no import cycle among the harness modules', () => {
  const graph = new Map(modules().map((f) => [f, importsOf(f).filter((t) => t.startsWith(HARNESS))]));
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(HARNESS, p)).join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
  expect(cycles).toEqual([]);
});

test('the unit project is host only: none of its files starts a guest, QEMU or the CLI', () => {
  const UNIT = join(REPO_ROOT, 'tests', 'unit');
  // What starts one: importing the guest's lifetime, the agent's client, the suite API or the
  // CLI; running a nested vitest or the CLI's binary.
  const starts = [/(?:from |import\()'[^']*(?:harness\/guest\/vm|harness\/agent\/agent|harness\/suite\/testing|harness\/index|helpers\/cli|harness\/cli\/\w+)\.js'/, /node_modules\/\.bin\/vitest/, /bin\/bpf-harness\.mjs/];
  const found: string[] = [];
  for (const f of readdirSync(UNIT).filter((n) => n.endsWith('.ts'))) {
    const text = readFileSync(join(UNIT, f), 'utf8');
    for (const re of starts) if (re.test(text)) found.push(`tests/unit/${f}: ${re.source}`);
  }
  expect(found, 'these belong in tests/integration/').toEqual([]);
});
