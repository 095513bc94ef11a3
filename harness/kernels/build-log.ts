// What a kernel build prints: kbuild's step lines counted for the progress line, and the
// compiler's own message picked out of a failed build's log.

export interface KbuildStep {
  /** CC, LD, AR, HOSTCC, AS, ... */
  step: string;
  target: string;
}

/** One line of kbuild's quiet output ("  CC      kernel/fork.o"), or null for anything else. */
export function parseKbuildLine(line: string): KbuildStep | null {
  const m = /^ {2}([A-Z][A-Z0-9_-]*)(?: \[M\])?\s+(\S.*)$/.exec(line);
  return m ? { step: m[1], target: m[2].trim() } : null;
}

/** Counts what make did, for the heartbeat. */
export class BuildProgress {
  compiled = 0;
  steps = 0;
  last = '';
  milestone: string | null = null;
  add(line: string): void {
    const s = parseKbuildLine(line);
    if (!s) return;
    this.steps++;
    if (s.step === 'CC') this.compiled++;
    this.last = `${s.step} ${s.target}`;
    if ((s.step === 'LD' && s.target === 'vmlinux') || (s.step === 'BUILD' && /bzImage$/.test(s.target))) this.milestone = this.last;
  }
  /** A milestone seen since the last call (linking vmlinux, writing the bzImage), once. */
  takeMilestone(): string | null {
    const m = this.milestone;
    this.milestone = null;
    return m;
  }
  summary(elapsedMs: number): string {
    return `${this.compiled} files compiled, ${formatDuration(elapsedMs)} so far${this.last ? `; last: ${this.last}` : ''}`;
  }
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

const COMPILER_MESSAGE = /(\berror:|\bError:|#error|undefined reference to|multiple definition of|No rule to make target|cannot find -l|ld: .*(error|cannot)|fatal:|Segmentation fault|Killed)/;

/**
 * The compiler's own message from a failed build log: the last error lines (compiler, assembler,
 * linker), then make's last "***" line; the log's last lines when nothing matches.
 */
export function compilerErrors(log: string, max = 15): string[] {
  const lines = log.split('\n').map((l) => l.replace(/\s+$/, ''));
  const errors = lines.filter((l) => COMPILER_MESSAGE.test(l) && !/^make(\[\d+\])?: \*\*\*/.test(l));
  const make = lines.filter((l) => /^make(\[\d+\])?: \*\*\*/.test(l));
  if (!errors.length) return lines.filter(Boolean).slice(-max);
  const unique = [...new Set(errors)];
  return [...unique.slice(-max), ...make.slice(-1)];
}
