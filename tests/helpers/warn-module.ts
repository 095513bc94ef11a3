// The module of tests/fixtures/guest/warn-module (its init WARNs), built against a kernel's
// headers (Debian's linux-headers package on the host): by the fixture, or once by
// tests/integration/faults.test.ts for its two runs of the fixture (BH_WARN_MODULE_DIR).
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { REPO_ROOT } from '../../harness/base/paths.js';

/** Builds the module; returns the directory that holds bh_warn.ko. */
export async function buildWarnModule(release: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bh-warn-'));
  await cp(join(REPO_ROOT, 'tests/fixtures/guest/warn-module'), dir, { recursive: true });
  await execa('make', ['-C', `/usr/src/linux-headers-${release}`, `M=${dir}`, 'modules']);
  return dir;
}
