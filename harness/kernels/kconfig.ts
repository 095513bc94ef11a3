// Kconfig: .config text and fragments, the symbols and dependencies a tree's Kconfig files define,
// and the check that a merged config has what the fragment asked for.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { which } from '../base/tools.js';

/**
 * Reads .config syntax: `CONFIG_X=value` and `# CONFIG_X is not set` (value "n"). Strict mode
 * (for the fragment) rejects anything else that is not a comment, and duplicates.
 */
export function parseConfig(text: string, opts: { strict?: boolean; origin?: string } = {}): Map<string, string> {
  const out = new Map<string, string>();
  const origin = opts.origin ?? 'config';
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    let name: string | undefined;
    let value: string | undefined;
    const off = /^#\s*(CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (off) [name, value] = [off[1], 'n'];
    else if (set) [name, value] = [set[1], set[2]];
    else if (line.startsWith('#')) return;
    else if (opts.strict) throw new Error(`${origin}:${i + 1}: not a config line: "${line}"`);
    else return;
    if (opts.strict && out.has(name)) throw new Error(`${origin}:${i + 1}: ${name} is set twice`);
    out.set(name, value);
  });
  return out;
}

/** The symbols one Kconfig file defines (`config X` and `menuconfig X`). */
export function kconfigSymbols(text: string): string[] {
  return [...text.matchAll(/^[ \t]*(?:menu)?config[ \t]+([A-Za-z0-9_]+)[ \t]*$/gm)].map((m) => m[1]);
}

/** The `depends on` lines of one symbol's entry in a Kconfig file, to say why it could not be set. */
export function kconfigDepends(text: string, symbol: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^[ \\t]*(?:menu)?config[ \\t]+${symbol}[ \\t]*$`).test(l));
  if (start < 0) return [];
  const out: string[] = [];
  for (const l of lines.slice(start + 1)) {
    // The entry ends at its help text or at the next entry.
    if (/^[ \t]*(?:(?:menu)?config|choice|endchoice|menu|endmenu|if|endif|source|comment|help|---help---)\b/.test(l)) break;
    const m = /^[ \t]+depends on[ \t]+(.*)$/.exec(l);
    if (m) out.push(m[1].trim());
  }
  return out;
}

export interface ConfigCheck {
  /** Options the tree knows that did not end up with the fragment's value. */
  mismatched: { option: string; want: string; got: string }[];
  /** Options the tree does not know at all (older or newer kernels): skipped. */
  unknown: string[];
}

/** Compares the merged .config with the fragment; `known` is the set of symbols the tree defines. */
export function checkConfig(fragment: Map<string, string>, final: Map<string, string>, known: Set<string>): ConfigCheck {
  const mismatched: ConfigCheck['mismatched'] = [];
  const unknown: string[] = [];
  for (const [option, want] of fragment) {
    if (!known.has(option.replace(/^CONFIG_/, ''))) {
      unknown.push(option);
      continue;
    }
    const got = final.get(option) ?? 'n';
    if (got !== want) mismatched.push({ option, want, got });
  }
  return { mismatched, unknown };
}

/** Every Kconfig symbol the tree defines, and the file that defines it. */
export async function treeSymbols(root: string): Promise<{ known: Set<string>; defined: Map<string, string> }> {
  const { stdout } = await execa(which('find'), ['.', '-name', 'Kconfig*', '-type', 'f', '-not', '-path', './Documentation/*'], { cwd: root, maxBuffer: 1 << 28 });
  const defined = new Map<string, string>();
  for (const rel of stdout.split('\n').filter(Boolean)) {
    const file = rel.replace(/^\.\//, '');
    for (const s of kconfigSymbols(await readFile(join(root, file), 'utf8'))) if (!defined.has(s)) defined.set(s, file);
  }
  return { known: new Set(defined.keys()), defined };
}
