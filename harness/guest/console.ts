// The guest's serial console: every byte goes to a log file, and each line is scanned for the
// markers of a faulting or dying kernel (panic, oops, BUG, WARNING, KASAN, UBSAN, lockdep, RCU
// stalls, lockups, hung tasks), so that a boot fails fast with the reason and a test that made
// the kernel fault fails, with the kernel's own report. Lines a per-kernel allowlist names as
// harmless (kernels/allowlist/) are not faults.
import { createWriteStream, type WriteStream } from 'node:fs';

export type Fault =
  | 'panic'
  | 'oops'
  | 'bug'
  | 'warning'
  | 'kasan'
  | 'ubsan'
  | 'lockdep'
  | 'rcu-stall'
  | 'soft-lockup'
  | 'hard-lockup'
  | 'hung-task';

/** Faults after which the kernel cannot be trusted to go on: the guest is killed at once. */
export const FATAL_FAULTS: ReadonlySet<Fault> = new Set(['panic', 'rcu-stall', 'soft-lockup', 'hard-lockup', 'hung-task']);

/**
 * Faults the kernel reports from its own clock (a CPU or task stuck for so many seconds): a host
 * that did not run the guest's vCPUs makes them too. Each is judged (harness/guest/vcpu-time.ts) before
 * it counts as a fault.
 */
export const STUCK_FAULTS: ReadonlySet<Fault> = new Set(['rcu-stall', 'soft-lockup', 'hard-lockup', 'hung-task']);

// Most specific first: a soft lockup line also says "BUG:", a KASAN report starts "BUG: KASAN:",
// a lockdep splat starts "WARNING: possible ...".
const MARKERS: [Fault, RegExp][] = [
  ['panic', /Kernel panic - not syncing/],
  ['kasan', /\bBUG: KASAN: /],
  ['rcu-stall', /rcu.*(detected stalls|self-detected stall)|INFO: rcu_(sched|preempt) (self-)?detected stall/],
  ['soft-lockup', /soft lockup/],
  ['hard-lockup', /hard lockup|Watchdog detected hard LOCKUP/i],
  ['hung-task', /blocked for more than \d+ seconds/],
  [
    'lockdep',
    /WARNING: (possible (circular|recursive) locking|inconsistent lock state|suspicious RCU usage|bad unlock balance|held lock freed|lock held when returning|possible irq lock inversion|.*-safe -> .*-unsafe lock order)/,
  ],
  ['ubsan', /\bUBSAN: /],
  ['oops', /\bOops(: |\[#)|general protection fault|unable to handle (kernel|page)/i],
  ['warning', /\bWARNING: (CPU: \d+ PID: \d+ at |at )/],
  ['bug', /\bBUG: |kernel BUG at/],
];

/** Returns the fault a console line reports, if any. */
export function scanLine(line: string): Fault | null {
  for (const [fault, re] of MARKERS) if (re.test(line)) return fault;
  return null;
}

/** A console line the allowlist calls harmless, with the reason. */
export interface AllowRule {
  pattern: RegExp;
  reason: string;
  /** Where the rule stands ("kernels/allowlist/all.txt:3"). */
  origin: string;
}

export interface FaultRecord {
  kind: Fault;
  line: string;
  /** The fault line and the lines after it (up to 60): the kernel's own report. */
  report: string[];
  /** The two lines before the fault line (a WARN's own message comes before its WARNING line). */
  before: string[];
  /** For a stall or lockup: what the host gave the guest's vCPUs meanwhile (they were not starved). */
  host?: string;
}

const REPORT_LINES = 60;

export class ConsoleLog {
  private out: WriteStream;
  private partial = '';
  private lines: string[] = [];
  private readonly keep = 400;
  /** Every fault seen, in order. */
  readonly faults: FaultRecord[] = [];
  /** Lines that would have been faults but the allowlist names, with the rule. */
  readonly allowed: { line: string; rule: AllowRule }[] = [];
  /** Stalls and lockups seen while the host starved the guest: not kernel faults, with the figures. */
  readonly excused: { kind: Fault; line: string; reason: string }[] = [];
  /**
   * Judges a stall or lockup (STUCK_FAULTS) when it is seen: whether the host starved the guest
   * over the time the kernel says it was stuck, with the figures either way.
   */
  excuse?: (kind: Fault, line: string) => { starved: boolean; text: string } | null;
  /** What the image's init said ("bpf-harness: ..." lines), in order. */
  readonly guestSays: string[] = [];
  /** When init said each thing first (performance.now(): the monotonic clock), by its text. */
  readonly saidAt = new Map<string, number>();
  /** Lines the guest printed (QEMU's own "[qemu] ..." lines are not counted). */
  guestLines = 0;
  /** The guest's last line and when it came (performance.now()): how long a hung guest has been silent. */
  lastGuestLine?: { line: string; at: number };
  /** The kernel said it runs init ("Run /init as init process": 4.19 and later say it). */
  initRan = false;
  private listeners: ((kind: Fault, line: string) => void)[] = [];
  private lineWaiters: { test: (line: string) => boolean; resolve: () => void }[] = [];

  constructor(
    readonly path: string,
    private readonly allow: AllowRule[] = [],
  ) {
    this.out = createWriteStream(path);
  }

  /** The first fault, or null. */
  get fault(): FaultRecord | null {
    return this.faults[0] ?? null;
  }

  onFault(fn: (kind: Fault, line: string) => void): void {
    this.listeners.push(fn);
  }

  write(chunk: Buffer | string): void {
    this.out.write(chunk);
    const text = this.partial + chunk.toString();
    const parts = text.split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.line(line);
  }

  private line(line: string): void {
    this.lines.push(line);
    if (!line.startsWith('[qemu] ')) {
      this.guestLines++;
      this.lastGuestLine = { line, at: performance.now() };
      if (!this.initRan && /Run \S+ as init process/.test(line)) this.initRan = true;
    }
    // init says its lines through /dev/kmsg ("[    1.9] bpf-harness: starting sshd"), or, before
    // /dev is up or from a test's own init, on the console, where a kernel message printed
    // meanwhile can land before the newline ("bpf-harness: starting sshd[    1.9] GACT probability
    // on"): what init said ends there.
    const says = /^(?:\[\s*\d+\.\d+\] )?bpf-harness: (.*)$/.exec(line);
    if (says) {
      const said = says[1].replace(/\[\s*\d+\.\d+\].*$/, '').trim();
      this.guestSays.push(said);
      if (!this.saidAt.has(said)) this.saidAt.set(said, performance.now());
    }
    if (this.lines.length > this.keep) this.lines.splice(0, this.lines.length - this.keep);
    // Each open fault report takes the lines after its fault (the newest faults are the open ones).
    for (let i = this.faults.length - 1; i >= 0 && this.faults[i].report.length < REPORT_LINES; i--) this.faults[i].report.push(line);
    const kind = scanLine(line);
    if (kind) {
      const rule = this.allow.find((r) => r.pattern.test(line));
      const host = rule || !STUCK_FAULTS.has(kind) ? null : (this.excuse?.(kind, line) ?? null);
      if (rule) this.allowed.push({ line, rule });
      else if (host?.starved) this.excused.push({ kind, line, reason: `the host starved the guest: ${host.text}` });
      else {
        this.faults.push({ kind, line, report: [line], before: this.lines.slice(-3, -1), host: host ? `the host ran the guest: ${host.text}` : undefined });
        for (const fn of this.listeners) fn(kind, line);
      }
    }
    if (this.lineWaiters.length) {
      this.lineWaiters = this.lineWaiters.filter((w) => {
        if (!w.test(line)) return true;
        w.resolve();
        return false;
      });
    }
  }

  /** Resolves true once a line passing `test` arrives, false after `ms`. */
  waitForLine(test: (line: string) => boolean, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.lineWaiters = this.lineWaiters.filter((w) => w !== waiter);
        resolve(false);
      }, ms);
      const waiter = {
        test,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      this.lineWaiters.push(waiter);
    });
  }

  /** Everything so far (the console of a boot that is saved as a snapshot). */
  text(): string {
    return this.tail(this.lines.length + 1) + '\n';
  }

  /** The last n lines, for error messages. */
  tail(n = 40): string {
    const all = this.partial ? [...this.lines, this.partial] : this.lines;
    return all.slice(-n).join('\n');
  }

  async close(): Promise<void> {
    if (this.partial) this.line(this.partial);
    this.partial = '';
    await new Promise<void>((res) => this.out.end(res));
  }
}

/**
 * Reads allowlist files: one rule per line, `REGEX ## REASON` (the reason is required), `#`
 * comments and blank lines ignored.
 */
export function parseAllowlist(text: string, origin: string): AllowRule[] {
  const rules: AllowRule[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || (line.startsWith('#') && !line.startsWith('##'))) return;
    const at = line.lastIndexOf(' ## ');
    const where = `${origin}:${i + 1}`;
    if (at < 0 || !line.slice(at + 4).trim()) throw new Error(`${where}: an allowlist rule is "REGEX ## REASON", and the reason is required: "${line}"`);
    let pattern: RegExp;
    try {
      pattern = new RegExp(line.slice(0, at).trim());
    } catch (e) {
      throw new Error(`${where}: not a regular expression: ${(e as Error).message}`);
    }
    rules.push({ pattern, reason: line.slice(at + 4).trim(), origin: where });
  });
  return rules;
}
