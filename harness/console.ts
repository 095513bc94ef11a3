// The guest's serial console: every byte goes to a log file, and each line is scanned for the
// markers of a dead or dying kernel so that the run fails fast with the reason.
import { createWriteStream, type WriteStream } from 'node:fs';

export type Fault = 'panic' | 'oops' | 'bug' | 'rcu-stall' | 'soft-lockup' | 'hung-task';

// Most specific first: a soft lockup line also says "BUG:".
const MARKERS: [Fault, RegExp][] = [
  ['panic', /Kernel panic - not syncing/],
  ['rcu-stall', /rcu.*(detected stalls|self-detected stall)|INFO: rcu_(sched|preempt) (self-)?detected stall/],
  ['soft-lockup', /(soft|hard) lockup/],
  ['hung-task', /blocked for more than \d+ seconds/],
  ['oops', /\bOops(: |\[#)|general protection fault|unable to handle (kernel|page)/i],
  ['bug', /\bBUG: |kernel BUG at/],
];

/** Returns the fault a console line reports, if any. */
export function scanLine(line: string): Fault | null {
  for (const [fault, re] of MARKERS) if (re.test(line)) return fault;
  return null;
}

export class ConsoleLog {
  private out: WriteStream;
  private partial = '';
  private lines: string[] = [];
  private readonly keep = 400;
  fault: { kind: Fault; line: string } | null = null;
  /** The first fault's line and the lines after it (up to 60): the oops or panic report itself. */
  private faultReport: string[] = [];
  /** What the image's init said ("bpf-harness: ..." lines), in order. */
  readonly guestSays: string[] = [];
  /** When init said each thing first (Date.now()), by its text. */
  readonly saidAt = new Map<string, number>();
  /** Lines the guest printed (QEMU's own "[qemu] ..." lines are not counted). */
  guestLines = 0;
  private listeners: ((kind: Fault, line: string) => void)[] = [];

  constructor(readonly path: string) {
    this.out = createWriteStream(path);
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
    if (!line.startsWith('[qemu] ')) this.guestLines++;
    if (line.startsWith('bpf-harness: ')) {
      const said = line.slice('bpf-harness: '.length).trim();
      this.guestSays.push(said);
      if (!this.saidAt.has(said)) this.saidAt.set(said, Date.now());
    }
    if (this.lines.length > this.keep) this.lines.splice(0, this.lines.length - this.keep);
    if (this.fault && this.faultReport.length < 60) this.faultReport.push(line);
    const kind = scanLine(line);
    if (kind && !this.fault) {
      this.faultReport = [line];
      this.fault = { kind, line };
      for (const fn of this.listeners) fn(kind, line);
    }
  }

  /** The first fault's report: its line and up to n - 1 lines after it. */
  faultLines(n = 20): string {
    return this.faultReport.slice(0, n).join('\n');
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
