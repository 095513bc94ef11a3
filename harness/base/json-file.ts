// The JSON files the harness keeps (the catalog, the lock, the recipe, run records, a bisect's
// state): reading one names the file and what is wrong with it; writing one replaces it whole.
import { readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';

/** Parses a JSON file; `check` says what a valid one must hold (an error message, or null). */
export function readJsonFile<T>(path: string, check?: (v: unknown) => string | null): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  const problem = check?.(value);
  if (problem) throw new Error(`${path}: ${problem}`);
  return value as T;
}

/** Writes a JSON file by replacing it whole: an interruption leaves the old one or the new one. */
export async function writeJsonFile(path: string, value: unknown): Promise<void> {
  await writeFile(`${path}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
