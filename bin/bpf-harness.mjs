#!/usr/bin/env node
// The `bpf-harness` command of projects that depend on the harness (`npx bpf-harness suite --dir
// ./bpf-tests xdp`): the CLI in harness/cli.ts, run through tsx's loader.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../harness/cli.ts');
runCli(process.argv.slice(2));
