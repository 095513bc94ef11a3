// Where things are: the checkout or installed package, and the harness's own modules as this
// process runs them (the results directory is configuration: harness/base/config.ts).
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** harness/ or dist/: this module is in its base/ folder. */
const TOP = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** `.ts` when the harness runs from its sources (vitest, tsx), `.js` from its build (dist/). */
const EXT = extname(fileURLToPath(import.meta.url));

/** The package: harness/ (sources) and dist/ (their build) sit at its top, beside images/, kernels/ and suites/. */
export const REPO_ROOT = resolve(TOP, '..');

/** One of the harness's modules (`report/reporter`), from where this one runs: harness/NAME.ts or dist/NAME.js. */
export const harnessModule = (name: string): string => join(TOP, `${name}${EXT}`);

/** Node's arguments that run the CLI in a child process the way this process runs the harness. */
export const cliArgs = (): string[] => (EXT === '.ts' ? ['--import', 'tsx', harnessModule('cli/main')] : [harnessModule('cli/main')]);

/** A name made safe for a file name (kernel names may be paths or URLs). */
export const fileSafe = (s: string): string => s.replace(/[^\w.-]/g, '_');

/** The current time as a file-name-safe ISO stamp. */
export const timestamp = (): string => new Date().toISOString().replace(/[:.]/g, '-');
