// Where things are: the checkout, and the results directory that logs and reports go to.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Logs and reports: BPF_HARNESS_RESULTS, or results/ in the checkout. */
export function resultsRoot(): string {
  return process.env.BPF_HARNESS_RESULTS ?? join(REPO_ROOT, 'results');
}

/** A name made safe for a file name (kernel names may be paths or URLs). */
export const fileSafe = (s: string): string => s.replace(/[^\w.-]/g, '_');

/** The current time as a file-name-safe ISO stamp. */
export const timestamp = (): string => new Date().toISOString().replace(/[:.]/g, '-');
