// The CLI's subcommands, each with its own options and usage lines: an option that a subcommand
// does not take is refused with one message naming both, instead of being silently ignored.
import { parseArgs } from 'node:util';

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

const ALL = {
  kernel: { type: 'string', short: 'k' },
  kernels: { type: 'string' },
  shard: { type: 'string' },
  test: { type: 'string', short: 't' },
  dir: { type: 'string' },
  out: { type: 'string' },
  modules: { type: 'string' },
  sha256: { type: 'string' },
  source: { type: 'string' },
  jobs: { type: 'string' },
  'config-only': { type: 'boolean' },
  suite: { type: 'string' },
  'keep-on-fail': { type: 'boolean' },
  retries: { type: 'string' },
  'flaky-ok': { type: 'boolean' },
  'no-snapshot': { type: 'boolean' },
  pristine: { type: 'boolean' },
  attach: { type: 'string' },
  stop: { type: 'string' },
  list: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  tree: { type: 'string' },
  good: { type: 'string' },
  bad: { type: 'string' },
  work: { type: 'string' },
  reverse: { type: 'boolean' },
  resume: { type: 'boolean' },
  copy: { type: 'string', multiple: true },
  cwd: { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof ALL;
export type Values = { [K in OptionName]?: (typeof ALL)[K] extends { multiple: true } ? string[] : (typeof ALL)[K]['type'] extends 'boolean' ? boolean : string };

/** Options of every command that resolves a kernel (a source kernel's tarball and checksum, a bzImage's modules). */
const KERNEL: OptionName[] = ['kernel', 'modules', 'source', 'sha256'];

export const COMMANDS = {
  suite: {
    options: ['kernels', 'shard', 'test', 'dir', 'keep-on-fail', 'retries', 'flaky-ok', 'no-snapshot', 'pristine', ...KERNEL],
    usage: `  npm run suite <type...|all> [-- --kernel NAME|PATH] [--modules DIR]   run suites in guests
  npm run suite <type...|all> -- --kernel 5.10,6.1 | --kernels all     the kernel matrix, with a report
      [--shard i/n]                                                    run one CI shard of the tests
      [-t|--test PATTERN]                                              only the tests whose name matches
      [--dir DIR]                                                      suites from your own folder (one subfolder each)
      [--keep-on-fail]                                                 keep the guest of the first failing test up
      [--retries N] [--flaky-ok]                                       run a failing test up to N more times; one that
                                                                       then passes is flaky and fails the run, unless --flaky-ok
      [--no-snapshot]                                                  boot every guest (default: start from the kernel's snapshot)
      [--pristine]                                                     a fresh guest for every suite file (default: the hand-over)
      [--source FILE|DIR] [--sha256 HEX]                               a source kernel's tarball or tree, and its checksum`,
  },
  'kernels list': { options: [], usage: '  npm run kernels -- list                                              the kernel catalog' },
  'kernels fetch': { options: KERNEL, usage: '  npm run kernels -- fetch NAME                                        download and cache a kernel' },
  'kernels lock': { options: [], usage: '  npm run kernels -- lock [NAME...]                                    pin Debian kernels to the newest packages' },
  'kernels build': {
    options: ['kernel', 'sha256', 'source', 'jobs', 'config-only'],
    usage: `  npm run kernels -- build NAME|PATH|URL [--sha256 HEX] [--source FILE] [--jobs N] [--config-only]
                                                                       build a kernel from source (cached)`,
  },
  report: {
    options: ['out', 'flaky-ok'],
    usage: `  npm run report -- DIR... [--out DIR] [--flaky-ok]                    merge runs (CI shards) into one report;
                                                                       flaky tests fail it, unless --flaky-ok`,
  },
  image: { options: KERNEL, usage: '  npm run image -- [--kernel NAME]                                     build the guest image' },
  shell: {
    options: ['suite', 'attach', 'stop', 'list', 'no-snapshot', ...KERNEL],
    usage: `  npm run shell -- [--kernel NAME] [--suite TYPE]                      a shell in a guest (with the suite's objects
                                                                       and a veth pair); exit ends the guest
  npm run shell -- --attach ID | --stop ID | --list                    a shell in a kept guest; end it; list them`,
  },
  run: {
    options: ['kernels', 'copy', 'cwd', 'timeout', 'keep-on-fail', 'shard', ...KERNEL],
    usage: `  npx bpf-harness run [--kernel K1,K2|--kernels all] [--copy PATH]... [--cwd DIR] [--timeout S] -- PROGRAM [ARGS...]
                                                                       your own test program as root in a guest of each kernel:
                                                                       its exit code is the verdict, kernel faults fail it, TAP
                                                                       lines become cases (go test -exec, a cargo runner)
      [--keep-on-fail]                                                 keep the guest of the first kernel where it failed up
      [--shard i/n]                                                    this CI job's share of the kernels (npm run report merges)`,
  },
  init: {
    options: ['dir'],
    usage: `  npx bpf-harness init [--dir DIR]                                     write a first suite (BPF C and a test) into
                                                                       DIR/udp_counter (default bpf-tests/), ready to run`,
  },
  bisect: {
    options: ['tree', 'good', 'bad', 'test', 'work', 'reverse', 'resume'],
    usage: `  npm run bisect -- --tree PATH --good REV --bad REV SUITE... [-t PATTERN]
                                                                       the kernel commit where the tests began to fail:
                                                                       each step builds the tree and runs the suites on it
      [--reverse]                                                      the commit where they began to pass (--good is the newer)
      [--work DIR] [--resume]                                          the bisect's directory; go on with an interrupted one`,
  },
  boot: {
    options: ['dry-run', 'no-snapshot', ...KERNEL],
    usage: `  npm run boot -- [--kernel NAME] [--dry-run]                          boot a guest and keep it up (Ctrl-C ends it);
                                                                       --dry-run prints the command line a boot runs`,
  },
} as const satisfies Record<string, { options: readonly OptionName[]; usage: string }>;

export type CommandName = keyof typeof COMMANDS;

export const USAGE = `usage:
${Object.values(COMMANDS)
  .map((c) => c.usage)
  .join('\n')}

Every subcommand takes -h|--help. Environment: see the README's table (harness/base/config.ts), e.g.
BPF_HARNESS_KERNEL (default kernel), BPF_HARNESS_ACCEL=kvm|tcg, BPF_HARNESS_CACHE, BPF_HARNESS_RESULTS.`;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Parsed {
  command: CommandName | 'help';
  /** The positionals after the command's name(s). */
  args: string[];
  values: Values;
}

const KERNELS_SUBCOMMANDS = ['list', 'fetch', 'lock', 'build'];

/** Which subcommand an argument list names: the first positional (and the kernels subcommand). */
function commandOf(positionals: string[]): { command: CommandName | undefined; taken: number } {
  const [first, second] = positionals;
  if (first === 'kernels') {
    if (second === undefined) return { command: 'kernels list', taken: 1 };
    if (!KERNELS_SUBCOMMANDS.includes(second)) throw new UsageError(`unknown kernels command "${second}" (${KERNELS_SUBCOMMANDS.join(', ')})`);
    return { command: `kernels ${second}` as CommandName, taken: 2 };
  }
  if (first !== undefined && first in COMMANDS && !first.startsWith('kernels ')) return { command: first as CommandName, taken: 1 };
  return { command: undefined, taken: 0 };
}

/** Parses the arguments of one subcommand; an option it does not take is a UsageError naming both. */
export function parseCommandLine(argv: string[]): Parsed {
  // First which command: the positionals, whatever the options (all of them known here).
  const loose = parseArgs({ args: argv, options: ALL, allowPositionals: true, strict: false });
  const positionals = loose.positionals;
  if (!positionals.length) {
    if (loose.values.help) return { command: 'help', args: [], values: { help: true } };
    throw new UsageError(`name a command\n${USAGE}`);
  }
  const { command, taken } = commandOf(positionals);
  if (!command) throw new UsageError(`unknown command "${positionals[0]}"\n${USAGE}`);
  const spec = COMMANDS[command];
  const own: Record<string, OptionSpec> = { help: ALL.help };
  for (const o of spec.options) own[o] = ALL[o];
  try {
    const { values, positionals: p } = parseArgs({ args: argv, options: own, allowPositionals: true, strict: true });
    return { command, args: p.slice(taken), values: values as Values };
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const option = /Unknown option '([^']+)'/.exec(err.message)?.[1] ?? err.message;
      throw new UsageError(`${command} does not take ${option}\nusage:\n${spec.usage}`);
    }
    throw new UsageError(`${command}: ${err.message}\nusage:\n${spec.usage}`);
  }
}
