// Where things are: the checkout (the results directory is configuration: harness/config.ts).
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** A name made safe for a file name (kernel names may be paths or URLs). */
export const fileSafe = (s: string): string => s.replace(/[^\w.-]/g, '_');

/** The current time as a file-name-safe ISO stamp. */
export const timestamp = (): string => new Date().toISOString().replace(/[:.]/g, '-');
