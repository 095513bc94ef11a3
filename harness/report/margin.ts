// A bounded figure (harness/report/bounds.ts: expectBounded) against its bound, in words and in
// percent, for every report that shows one: report.md and JUnit of a run (report.ts), a soak's
// worst values (soak.ts). Pure functions, no vitest: the CLI renders reports under plain Node.

/** One bounded figure of one test, as measured in one run. */
export interface Bounded {
  name: string;
  value: number;
  atMost?: number;
  atLeast?: number;
}

/** "at most 5", "at least 2 and at most 9". */
export function boundText(b: { atMost?: number; atLeast?: number }): string {
  return [b.atLeast !== undefined && `at least ${b.atLeast}`, b.atMost !== undefined && `at most ${b.atMost}`].filter(Boolean).join(' and ');
}

/**
 * How far `value` stays inside its bound, in percent of the bound (at most 50, value 45: 10%;
 * at least 20, value 15: -25%); with both bounds, the nearer one. A bound of 0 gives 0 at the
 * bound and ±Infinity elsewhere.
 */
export function marginPct(b: Bounded): number {
  const side = (room: number, bound: number) => (bound === 0 ? (room === 0 ? 0 : Math.sign(room) * Infinity) : (100 * room) / Math.abs(bound));
  const m: number[] = [];
  if (b.atMost !== undefined) m.push(side(b.atMost - b.value, b.atMost));
  if (b.atLeast !== undefined) m.push(side(b.value - b.atLeast, b.atLeast));
  // NaN (a value that was not a number) is as bad as it gets.
  return m.some(Number.isNaN) ? -Infinity : Math.min(...m);
}

/** "≥ 2, ≤ 9": the bound in a table cell. */
export const boundCell = (b: { atMost?: number; atLeast?: number }) => [b.atLeast !== undefined && `≥ ${b.atLeast}`, b.atMost !== undefined && `≤ ${b.atMost}`].filter(Boolean).join(', ');

/** "12.5%", "-3.0% (past it)", "∞": a margin in a table cell. */
export const pctCell = (m: number) => (Number.isFinite(m) ? `${m.toFixed(1)}%` : m > 0 ? '∞' : '-∞') + (m < 0 ? ' (past it)' : '');
