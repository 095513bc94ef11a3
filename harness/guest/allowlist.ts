// The console allowlist of a kernel: kernels/allowlist/all.txt, kernels/allowlist/<kernel>.txt and
// the file BPF_HARNESS_ALLOWLIST names.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { settings } from '../base/config.js';
import { type AllowRule, parseAllowlist } from './console.js';
import { fileSafe, REPO_ROOT } from '../base/paths.js';

export const ALLOWLIST_DIR = join(REPO_ROOT, 'kernels', 'allowlist');

/** The repository's rules for a kernel, and those of BPF_HARNESS_ALLOWLIST (a file of your own). */
export function loadAllowlist(kernelName: string, dir = ALLOWLIST_DIR): AllowRule[] {
  const rules: AllowRule[] = [];
  for (const file of ['all.txt', `${fileSafe(kernelName)}.txt`]) {
    const path = join(dir, file);
    if (existsSync(path)) rules.push(...parseAllowlist(readFileSync(path, 'utf8'), `kernels/allowlist/${file}`));
  }
  const own = settings().allowlist;
  if (own) rules.push(...parseAllowlist(readFileSync(own, 'utf8'), own));
  return rules;
}
