// TAP from a program's output (`ok 1 - name`, `not ok 2 - name # SKIP why`): each line a test of
// the run's record, so that report.md and JUnit have a case per TAP line.
import type { TestRecord } from './run-record.js';

/** The TAP test lines of `output` as records of suite `suite`; none when it prints no TAP. */
export function tapTests(output: string, suite: string): TestRecord[] {
  const tests: TestRecord[] = [];
  for (const line of output.split('\n')) {
    const m = /^(not )?ok\b\s*(\d+)?\s*(?:-\s*)?(.*?)\s*(?:#\s*(SKIP|TODO)\b\s*(.*))?$/i.exec(line.trimEnd());
    if (!m) continue;
    const [, not, n, desc, directive, why] = m;
    const name = desc || `test ${n ?? tests.length + 1}`;
    if (directive?.toUpperCase() === 'SKIP') tests.push({ suite, name, state: 'skipped', durationMs: 0, note: why || 'skipped' });
    // A TODO test's failure is expected (TAP's rule): it does not fail the run.
    else if (not && directive?.toUpperCase() !== 'TODO') tests.push({ suite, name, state: 'failed', durationMs: 0, error: `not ok ${n ?? ''} ${desc}`.replace(/\s+/g, ' ').trim() });
    else tests.push({ suite, name, state: 'passed', durationMs: 0 });
  }
  return tests;
}
