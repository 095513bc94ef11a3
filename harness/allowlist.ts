// The console allowlist of a kernel: kernels/allowlist/all.txt and kernels/allowlist/<kernel>.txt.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AllowRule, parseAllowlist } from './console.js';
import { fileSafe, REPO_ROOT } from './paths.js';

export const ALLOWLIST_DIR = join(REPO_ROOT, 'kernels', 'allowlist');

export function loadAllowlist(kernelName: string, dir = ALLOWLIST_DIR): AllowRule[] {
  const rules: AllowRule[] = [];
  for (const file of ['all.txt', `${fileSafe(kernelName)}.txt`]) {
    const path = join(dir, file);
    if (existsSync(path)) rules.push(...parseAllowlist(readFileSync(path, 'utf8'), `kernels/allowlist/${file}`));
  }
  return rules;
}
