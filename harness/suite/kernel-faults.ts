// Kernel faults as a suite file reports them: the record the reports keep, and the text of a
// test's failure message.
import type { FaultRecord } from '../guest/console.js';
import type { KernelFault } from '../report/run-record.js';

/** A fault as the reports keep it: kind and line, and the kernel's lines around it. */
export function kernelFault(f: FaultRecord): KernelFault {
  return { kind: f.kind, line: f.host ? `${f.line.trim()} (${f.host})` : f.line.trim(), lines: [...f.before, ...f.report].slice(0, 32) };
}

/** A fault report for a test's failure message: kind and line, then the kernel's lines around it. */
export function describeFaults(faults: FaultRecord[]): string {
  return faults.map(kernelFault).map((f) => `kernel ${f.kind}: ${f.line}\n${f.lines.join('\n')}`).join('\n\n');
}
