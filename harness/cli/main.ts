#!/usr/bin/env -S npx tsx
// The command line: a thin layer over the library. `npm run suite xdp -- --kernel 5.10`. Each
// subcommand takes its own options (harness/cli/options.ts); importing this module runs nothing:
// main() runs when this file is the program (or bin/bpf-harness.mjs calls runCli).
import { realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isGiven, type Overrides, resultsRoot, settings, startSettings, wholeNumber } from '../base/config.js';
import { watchAncestors } from '../guest/lifeline.js';
import { timestamp } from '../base/paths.js';
import { runVerdict, writeReports } from '../report/report.js';
import { boot, image, shell } from './guest.js';
import { kernelsBuild, kernelsFetch, kernelsList, kernelsLock } from './kernels.js';
import { type CommandName, COMMANDS, parseCommandLine, USAGE, UsageError, type Values } from './options.js';
import { bisectCommand } from './bisect.js';
import { initCommand } from './init.js';
import { projectRoot, runCommand } from './run.js';
import { kernelList, suite } from './suite.js';

export { listSuites } from './suite.js';

const SHA256 = /^[0-9a-f]{64}$/i;

export async function main(argv: string[]): Promise<number> {
  const { command, args, values } = parseCommandLine(argv);
  if (command === 'help' || values.help) {
    console.log(command === 'help' ? USAGE : `usage:\n${COMMANDS[command].usage}`);
    return 0;
  }
  // The run's settings: the environment with what the flags set on top, read once here, so that a
  // bad value stops the run before any guest boots; the processes it starts get the flags' too.
  startSettings(flagSettings(command, values));
  // Long-running commands end, with their guests, when whatever started them goes away (npm
  // killed, the tsx wrapper killed, the terminal closed): their workers then see themselves
  // orphaned and take their guests down.
  if (command === 'suite' || command === 'shell' || command === 'boot' || command === 'run' || command === 'bisect') {
    watchAncestors((gone) => {
      console.error(`bpf-harness: process ${gone.pid}, which started this run, is gone; ending the run and its guests`);
      process.exit(1);
    });
  }
  switch (command) {
    case 'suite':
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
      const verdict = runVerdict(r, Boolean(values['flaky-ok']) || settings().flakyOk);
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
      return runCommand({ keepOnFail: Boolean(values['keep-on-fail']), shard: values.shard, argv: args, kernels: values.kernels ?? values.kernel, copy: values.copy, cwd: values.cwd, timeoutS: values.timeout !== undefined ? wholeNumber(values.timeout, '--timeout') : undefined });
    case 'init':
      return initCommand(values.dir);
    case 'bisect':
      return bisectCommand({ tree: values.tree, good: values.good, bad: values.bad, suites: args, test: values.test, work: values.work, reverse: values.reverse, resume: values.resume });
  }
}

/**
 * What a command's flags set, as the variables would: for this process's settings and for the
 * processes it starts (a matrix's runs, vitest's workers), which read them from their environment.
 */
export function flagSettings(command: CommandName, values: Values, cwd = process.cwd()): Overrides {
  // A source kernel's tarball checksum or local copy, for this run and the suite runs it starts.
  if (values.sha256 !== undefined && !SHA256.test(values.sha256)) throw new UsageError(`--sha256 must be a sha256 sum (64 hex digits), not "${values.sha256}"`);
  const o: Overrides = { kernelSource: values.source || undefined, kernelSha256: values.sha256 || undefined };
  // For every guest of this run and of the suite runs it starts.
  if (values['no-snapshot']) o.snapshot = '0';
  if ((command === 'suite' || command === 'run') && values['keep-on-fail']) o.keepOnFail = '1';
  if (command === 'suite') {
    // For vitest's retry (harness/suite/config.ts) and the reporter, here and in a matrix's runs.
    if (values.retries !== undefined) o.retries = String(wholeNumber(values.retries, '--retries'));
    if (values['flaky-ok']) o.flakyOk = '1';
    if (values.pristine) o.pristine = '1';
    if (values.modules) o.modules = values.modules;
    // One kernel named: the run's kernel, for the reporter and the suite files.
    const arg = values.kernels ?? values.kernel;
    if (arg?.split(',').some((k) => k.trim())) {
      const named = kernelList(arg);
      if (named.length === 1) o.kernel = named[0];
    }
    if (values.dir) {
      // The reporter records the suites of this folder; logs and reports go where the user is.
      o.suitesDir = resolve(values.dir);
      if (!isGiven('results')) o.results = join(cwd, 'results');
    }
  }
  // A project's test program: logs and reports go to its results/ (the top of its git work tree,
  // else the working directory), not into the package's folder, nor one per Go package that go
  // test -exec runs in.
  if (command === 'run' && !isGiven('results')) o.results = join(projectRoot(cwd), 'results');
  return o;
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
