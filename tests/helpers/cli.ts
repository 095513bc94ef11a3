// The CLI as a child process, as the package runs it: the compiled harness (dist/cli/main.js, brought
// up to date by the integration project's global setup, tests/helpers/build-setup.ts) under plain Node.
import { join } from 'node:path';
import { execa } from 'execa';
import { REPO_ROOT } from '../../harness/base/paths.js';

export const CLI = join(REPO_ROOT, 'dist', 'cli', 'main.js');

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** In a process group of its own (its pid is the group's id), to see what it leaves behind. */
  detached?: boolean;
}

/** `bpf-harness ARGS`, from the checkout unless told otherwise; never throws on a non-zero exit. */
export const cli = (args: string[], o: CliOptions = {}) => execa(process.execPath, [CLI, ...args], { reject: false, all: true, cwd: o.cwd ?? REPO_ROOT, env: o.env, detached: o.detached });
