// Bounded figures: a count or a time that a test holds under or over a bound ("the sleeper had at
// most 5 samples"). expectBounded asserts it and records it on the running test (task.meta.bounds),
// first, so that a failing figure is recorded too; the reporter copies the records into the run's
// record (run-record.ts), and a soak (npm run soak, harness/report/soak.ts) shows each figure's worst value
// over many runs beside its bound, so that a test close to its bound shows before it flakes.
import { expect, TestRunner } from 'vitest';
import { type Bounded, boundText } from './margin.js';

export type { Bounded };

declare module 'vitest' {
  interface TaskMeta {
    /** The test's bounded figures (expectBounded), in the order it checked them. */
    bounds?: Bounded[];
  }
}

/** The attempt of each test whose figures meta.bounds holds. */
const attemptOf = new WeakMap<object, number>();

/**
 * Asserts `atLeast <= value <= atMost` (either bound may be left out, not both) and records the
 * figure under `name` on the running test, whether or not the assertion holds. A test may check
 * several figures, each under its own name. Not for test.concurrent (the running test is vitest's
 * current one).
 */
export function expectBounded(name: string, value: number, bound: { atMost?: number; atLeast?: number }, detail?: string): void {
  const { atMost, atLeast } = bound;
  if (atMost === undefined && atLeast === undefined) throw new Error(`expectBounded("${name}"): give atMost, atLeast or both`);
  for (const b of [atMost, atLeast]) if (b !== undefined && !Number.isFinite(b)) throw new Error(`expectBounded("${name}"): a bound must be a finite number, not ${b}`);
  const test = TestRunner.getCurrentTest();
  if (!test) throw new Error(`expectBounded("${name}") was called outside a test`);
  // A retried test (--retries) checks its figures again: the last attempt's are the ones kept.
  const attempt = test.result?.retryCount ?? 0;
  if (attemptOf.get(test) !== attempt) test.meta.bounds = [];
  attemptOf.set(test, attempt);
  const bounds = (test.meta.bounds ??= []);
  if (bounds.some((b) => b.name === name)) throw new Error(`expectBounded: "${name}" was already checked in this test; give each figure its own name`);
  bounds.push({ name, value, ...(atMost !== undefined && { atMost }), ...(atLeast !== undefined && { atLeast }) });
  const message = `${name} = ${value}, bound: ${boundText(bound)}${detail ? ` (${detail})` : ''}`;
  if (atLeast !== undefined) expect(value, message).toBeGreaterThanOrEqual(atLeast);
  if (atMost !== undefined) expect(value, message).toBeLessThanOrEqual(atMost);
}
