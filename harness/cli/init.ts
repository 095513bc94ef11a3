// `init`: writes a first suite into the project (harness/suite/first-suite.ts) and says how to run it.
import { relative, resolve } from 'node:path';
import { INIT_SUITE, initSuite } from '../suite/first-suite.js';

export async function initCommand(dir?: string): Promise<number> {
  const files = await initSuite(dir);
  const suites = relative(process.cwd(), resolve(dir ?? 'bpf-tests')) || '.';
  console.log(`bpf-harness: wrote ${files.map((f) => relative(process.cwd(), f)).join(' and ')}`);
  console.log(`run it:  npx bpf-harness suite --dir ./${suites} ${INIT_SUITE}`);
  return 0;
}
