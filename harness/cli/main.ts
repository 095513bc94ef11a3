#!/usr/bin/env -S npx tsx
// The command line: a thin layer over the library. `npm run suite xdp -- --kernel 5.10`. Each
// subcommand takes its own options (harness/cli/options.ts); importing this module runs nothing:
// main() runs when this file is the program (or bin/bpf-harness.mjs calls runCli).
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkEnvironment, config, resultsRoot, wholeNumber } from '../base/config.js';
import { watchAncestors } from '../guest/lifeline.js';
import { timestamp } from '../base/paths.js';
import { runVerdict, writeReports } from '../report/report.js';
import { boot, image, shell } from './guest.js';
import { kernelsBuild, kernelsFetch, kernelsList, kernelsLock } from './kernels.js';
import { COMMANDS, parseCommandLine, USAGE, UsageError } from './options.js';
import { bisectCommand } from './bisect.js';
import { initCommand } from './init.js';
import { runCommand } from './run.js';
import { suite } from './suite.js';

export { listSuites } from './suite.js';

const SHA256 = /^[0-9a-f]{64}$/i;

export async function main(argv: string[]): Promise<number> {
  const { command, args, values } = parseCommandLine(argv);
  if (command === 'help' || values.help) {
    console.log(command === 'help' ? USAGE : `usage:\n${COMMANDS[command].usage}`);
    return 0;
  }
  // Every variable is read once, so that a bad value stops the run here, before any guest boots.
  checkEnvironment();
  // Long-running commands end, with their guests, when whatever started them goes away (npm
  // killed, the tsx wrapper killed, the terminal closed): their workers then see themselves
  // orphaned and take their guests down.
  if (command === 'suite' || command === 'shell' || command === 'boot' || command === 'run' || command === 'bisect') {
    watchAncestors((gone) => {
      console.error(`bpf-harness: process ${gone.pid}, which started this run, is gone; ending the run and its guests`);
      process.exit(1);
    });
  }
  // A source kernel's tarball checksum or local copy, for this run and the suite runs it starts.
  if (values.sha256 !== undefined && !SHA256.test(values.sha256)) throw new UsageError(`--sha256 must be a sha256 sum (64 hex digits), not "${values.sha256}"`);
  if (values.source) config.kernelSource.set(values.source);
  if (values.sha256) config.kernelSha256.set(values.sha256);
  // For every guest of this run and of the suite runs it starts.
  if (values['no-snapshot']) config.snapshot.set('0');
  switch (command) {
    case 'suite':
      if (values['keep-on-fail']) config.keepOnFail.set('1');
      // For vitest's retry (harness/suite/config.ts) and the reporter, here and in a matrix's runs.
      if (values.retries !== undefined) config.retries.set(String(wholeNumber(values.retries, '--retries')));
      if (values['flaky-ok']) config.flakyOk.set('1');
      if (values.pristine) config.pristine.set('1');
      return suite(args, values.kernels ?? values.kernel, { dir: values.dir, modules: values.modules, shard: values.shard, test: values.test });
    case 'kernels list':
      return kernelsList();
    case 'kernels fetch':
      return kernelsFetch(args[0] ?? values.kernel, values.modules);
    case 'kernels lock':
      return kernelsLock(args);
    case 'kernels build':
      return kernelsBuild(args[0] ?? values.kernel, values);
    case 'report': {
      // Merges the per-kernel records of several runs (e.g. CI shards) into one report.
      if (!args.length) throw new Error('report: name the result directories to merge');
      const out = values.out ?? join(resultsRoot(), `report-${timestamp()}`);
      const r = writeReports(out, [], args);
      const verdict = runVerdict(r, Boolean(values['flaky-ok']) || config.flakyOk.get());
      console.log(`${r.table}\n\nreport: ${r.markdown}\njunit:  ${r.junit}${verdict.line ? `\n${verdict.line}` : ''}`);
      return verdict.failed ? 1 : 0;
    }
    case 'image':
      return image(values);
    case 'shell':
      return shell(values);
    case 'boot':
      return boot(values);
    case 'run':
      if (values['keep-on-fail']) config.keepOnFail.set('1');
      return runCommand({ keepOnFail: Boolean(values['keep-on-fail']), shard: values.shard, argv: args, kernels: values.kernels ?? values.kernel, copy: values.copy, cwd: values.cwd, timeoutS: values.timeout !== undefined ? wholeNumber(values.timeout, '--timeout') : undefined });
    case 'init':
      return initCommand(values.dir);
    case 'bisect':
      return bisectCommand({ tree: values.tree, good: values.good, bad: values.bad, suites: args, test: values.test, work: values.work, reverse: values.reverse, resume: values.resume });
  }
}

/** Runs the CLI on `argv` and exits with its code; a failure is one line on stderr. */
export function runCli(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (e: Error) => {
      console.error(`bpf-harness: ${e.message}`);
      process.exit(e instanceof UsageError ? 2 : 1);
    },
  );
}

/** Whether this module is the program that node was started with (not imported by another). */
export function isMainModule(url: string, argv1 = process.argv[1]): boolean {
  if (!argv1) return false;
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  return real(argv1) === real(fileURLToPath(url));
}

if (isMainModule(import.meta.url)) runCli(process.argv.slice(2));
