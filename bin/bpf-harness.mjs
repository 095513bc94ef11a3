#!/usr/bin/env node
// The `bpf-harness` command (npm run suite, npx bpf-harness suite --dir ./bpf-tests xdp): the CLI
// of the compiled harness (dist/cli/main.js), compiled again first in a checkout whose sources changed.
import { ensureBuilt } from './build.mjs';

try {
  ensureBuilt();
} catch (e) {
  console.error(`bpf-harness: ${e.message}`);
  process.exit(1);
}
const { runCli } = await import('../dist/cli/main.js');
runCli(process.argv.slice(2));
