// `run -- PROGRAM [ARGS]`: a project's own test program (C, Go, Rust, a script) run as root in a
// guest of each kernel, as vmtest and vimto do, with what the harness adds around it: kernel
// faults fail the run, a kernel that does not come up fails its column at once, the kernel ×
// program table, report.md and JUnit (a case per kernel, or per TAP line when the program prints
// TAP). Its exit code is the verdict on each kernel. Usable as `go test -exec 'npx bpf-harness run
// --kernel 6.1 --'` and as a cargo runner.
import { execFileSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { resultsRoot, settings } from '../base/config.js';
import { eachAtOnce } from '../base/at-once.js';
import { which } from '../base/tools.js';
import { timestamp } from '../base/paths.js';
import { keepVm } from '../guest/keep-vm.js';
import { getKernel } from '../kernels/catalog.js';
import { runProgram } from '../guest/program.js';
import { Vm, VmError } from '../guest/vm.js';
import { runVerdict, writeReports } from '../report/report.js';
import { type KernelRun, type TestRecord, writeKernelRun } from '../report/run-record.js';
import { tapTests } from '../report/tap.js';
import { describeFaults, kernelFault } from '../suite/kernel-faults.js';
import { parseShard, shardOf } from '../kernels/shard.js';
import { guestBudget } from '../suite/config.js';
import { UsageError } from './options.js';
import { checkResultsDir, kernelList, matrixPlan, say } from './suite.js';

export interface RunArgs {
  argv: string[];
  kernels?: string;
  copy?: string[];
  cwd?: string;
  timeoutS?: number;
  /** Keep the guest of the first kernel on which the program failed up, as it left it. */
  keepOnFail?: boolean;
  /** "i/n": this CI job's share of the kernels (every n-th, from the i-th); `report` merges the shards. */
  shard?: string;
}

/** The top of the git work tree that holds `dir`, else `dir` itself (also without git). */
export function projectRoot(dir: string): string {
  try {
    return execFileSync(which('git'), ['-C', dir, 'rev-parse', '--show-toplevel'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || dir;
  } catch {
    return dir;
  }
}

export async function runCommand(a: RunArgs): Promise<number> {
  const [program, ...args] = a.argv;
  if (!program) throw new Error('run: name the program after --, e.g. npx bpf-harness run --kernel 6.1 -- ./test_prog');
  // Logs and reports go to the project's results/ (flagSettings, main.ts).
  checkResultsDir();
  const all = kernelList(a.kernels);
  const shard = a.shard === undefined ? undefined : parseShard(a.shard);
  if (shard === null) throw new UsageError(`--shard must be i/n with 1 <= i <= n, not "${a.shard}"`);
  const kernels = shard ? shardOf(all, shard) : all;
  if (!kernels.length) {
    say(`shard ${a.shard} has none of the ${all.length} kernel${all.length === 1 ? '' : 's'} (${all.join(', ')}): nothing to run`);
    return 0;
  }
  const name = basename(program);
  const dir = join(resultsRoot(), `run-${timestamp()}-${process.pid}`);
  const prefix = kernels.length > 1;
  let keptOne = false;
  // As many kernels at once as the host has room for guests (harness/suite/config.ts), each in its own guest.
  const { atOnce } = matrixPlan(guestBudget(), kernels.length);
  if (kernels.length > 1) say(`run: ${name} on kernels ${kernels.join(', ')}, ${atOnce} at a time; results in ${dir}`);
  await eachAtOnce(kernels, atOnce, async (k) => {
    const t0 = Date.now();
    const run: KernelRun = { kernel: k, tests: [], suiteErrors: [], wallMs: 0 };
    let vm: Vm | undefined;
    try {
      const kernel = await getKernel(k, { onProgress: say });
      vm = await Vm.start({ kernel, label: `run-${name}`, onEvent: (e) => e.type === 'progress' && say(e.message) });
      say(`kernel ${k}: running ${[program, ...args].join(' ')}`);
      let partial = '';
      const r = await runProgram(vm, program, args, {
        copy: a.copy,
        cwd: a.cwd,
        timeoutS: a.timeoutS,
        onOutput: (chunk, stream) => {
          if (!prefix) return void (stream === 'stdout' ? process.stdout : process.stderr).write(chunk);
          const lines = (partial + chunk).split('\n');
          partial = lines.pop() ?? '';
          for (const l of lines) console.log(`[${k}] ${l}`);
        },
      });
      if (partial) console.log(`[${k}] ${partial}`);
      // Every kernel message printed while the program ran is in the console log after this.
      await vm.syncConsole().catch(() => false);
      const faults = vm.console.faults;
      const tap = tapTests(r.output, name);
      const whole: TestRecord = {
        suite: name,
        name: [program, ...args].join(' '),
        state: r.code === 0 && !faults.length && !r.timedOut ? 'passed' : 'failed',
        durationMs: Date.now() - t0,
        consoleLog: vm.console.path,
      };
      if (r.timedOut) whole.error = `killed after ${a.timeoutS ?? 600} s (--timeout)`;
      else if (r.code !== 0) whole.error = `exited ${r.code}\n${r.output.split('\n').slice(-20).join('\n')}`;
      if (faults.length) {
        whole.faults = faults.map(kernelFault);
        // The reports give the fault's lines from the record; the error says what failed.
        whole.error = [whole.error, `the kernel faulted while the program ran: ${faults.map((f) => `${f.kind}: ${f.line.trim()}`).join('; ')}`].filter(Boolean).join('\n');
        console.error(describeFaults(faults));
      }
      // TAP lines are the cases; the program's exit code and the kernel's faults still judge the run.
      run.tests = tap.length ? [...tap, ...(whole.state === 'failed' && (faults.length || !tap.some((t) => t.state === 'failed')) ? [{ ...whole, name: `${whole.name} (exit code and kernel faults)` }] : [])] : [whole];
      // --keep-on-fail: the first failing kernel's guest stays up as the program left it.
      if (a.keepOnFail && !keptOne && run.tests.some((t) => t.state === 'failed') && vm.running) {
        keptOne = true; // claimed before the await: kernels run at once
        await keepVm(vm, { suite: name, test: whole.name, leftBy: 'the program' });
        vm = undefined;
      }
    } catch (e) {
      if (!(e instanceof VmError)) throw e;
      run.suiteErrors.push({ suite: name, error: e.message });
      say(`kernel ${k}: the guest did not come up (${e.bootCause ?? 'error'}): ${e.message.split('\n')[0]}`);
    } finally {
      await vm?.stop();
    }
    run.wallMs = Date.now() - t0;
    writeKernelRun(dir, run);
  });
  const report = writeReports(dir, kernels);
  const verdict = runVerdict(report, settings().flakyOk);
  console.log(`\n${report.table}\n\nreport: ${report.markdown}\njunit:  ${report.junit}`);
  return verdict.failed ? 1 : 0;
}
