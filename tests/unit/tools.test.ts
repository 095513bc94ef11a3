// The host tools table (harness/base/tools.ts) against the sources: every program the harness spawns is
// found through which() (so a missing one says which Debian package to install), and the table
// lists exactly the tools the harness uses: none missing (which() takes only a table name, so
// tsc catches those), none stale.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { TOOLS } from '../../harness/base/tools.js';

const sources = (dir = join(REPO_ROOT, 'harness')): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : /\.(ts|mjs)$/.test(e.name) ? [join(dir, e.name)] : []));

/** The source text of a call's first argument, from the opening parenthesis on. */
function firstArgument(text: string, open: number): string {
  let depth = 0;
  let quote: string | undefined;
  for (let i = open + 1; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') quote = c;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) {
      if (depth === 0) return text.slice(open + 1, i).trim();
      depth--;
    } else if (c === ',' && depth === 0) return text.slice(open + 1, i).trim();
  }
  throw new Error('unterminated call');
}

/** Every spawn of a program in harness/: where, and the expression that names the program. */
function spawns(): { where: string; program: string }[] {
  const out: { where: string; program: string }[] = [];
  for (const file of sources()) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\b(?:execa|execaSync|spawn|spawnSync|execFile|execFileSync|exec|execSync)\(/g)) {
      const before = text.slice(0, m.index);
      // Method calls of other things (ssh.exec, agent.exec, regex.exec) run no host program.
      if (/[.\w]$/.test(before)) continue;
      if (/^\s*(\/\/|\*)/.test(before.slice(before.lastIndexOf('\n') + 1))) continue;
      // Declarations (a function or an interface's method), not calls.
      const lineStart = before.slice(before.lastIndexOf('\n') + 1);
      if (/(?:function|async) +$/.test(before) || (m[0] === 'exec(' && /^\s*$/.test(lineStart))) continue;
      out.push({ where: `${relative(REPO_ROOT, file)}:${before.split('\n').length}`, program: firstArgument(text, m.index + m[0].length - 1) });
    }
  }
  return out;
}

/** Programs spawned without which(), with the reason each is safe. */
const NOT_THROUGH_WHICH: Record<string, string> = {
  // node itself (the matrix's children, the keeper).
  'process.execPath': 'this node',
  // vm.ts: the argv of harness/guest/boot-command.ts, whose programs come from which().
  'argv[0]': 'bootCommand(): which(setpriv), which(qemu-system-x86_64), or node and keeper.mjs',
  // keeper.mjs: the command vm.ts hands it (the same argv).
  'process.argv[2]': 'the keeper runs the command vm.ts built',
};

test('every program the harness spawns is found through which() (a missing one names its Debian package)', () => {
  const found = spawns();
  expect(found.length, 'the scan finds the spawns').toBeGreaterThan(20);
  const bad = found.filter((s) => !/^which\(/.test(s.program) && !(s.program in NOT_THROUGH_WHICH));
  expect(bad.map((s) => `${s.where}: spawns ${s.program} without which()`)).toEqual([]);
});

test('the tools table lists exactly the tools the harness runs or checks', () => {
  const used = new Set<string>();
  for (const file of sources()) {
    if (file.endsWith('harness/base/tools.ts')) continue;
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\bwhich\(\s*'([^']+)'\s*\)/g)) used.add(m[1]);
    for (const m of text.matchAll(/\brequireTools\(([^)]*)\)/g)) for (const n of m[1].matchAll(/'([^']+)'/g)) used.add(n[1]);
    // A table of tools typed Tool (e.g. image.ts's decompressors), and a helper's tool argument.
    for (const m of text.matchAll(/\btool: '([^']+)',/g)) used.add(m[1]);
    for (const m of text.matchAll(/\brun\(`[^`]*`, '([^']+)'/g)) used.add(m[1]);
  }
  const table = Object.keys(TOOLS);
  expect(table.filter((t) => !used.has(t)), 'in the table, but nothing in harness/ runs or checks it').toEqual([]);
  expect([...used].filter((t) => !table.includes(t)), 'run by harness/, but not in the table').toEqual([]);
});
