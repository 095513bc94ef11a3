// expectBounded: asserts a figure against its bounds and records it on the running test, failing
// or not; the reporter carries the records into the run's record (kernel-<name>.json).
import { expect, test } from 'vitest';
import { expectBounded } from '../harness/index.js';

const failureOf = (f: () => void): Error => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
};

test('a figure within its bounds passes and is recorded', ({ task }) => {
  expectBounded('busy samples', 40, { atLeast: 25, atMost: 52 });
  expectBounded('idle samples', 5, { atMost: 5 });
  expectBounded('rate', 0.5, { atLeast: 0.5 });
  expect(task.meta.bounds).toEqual([
    { name: 'busy samples', value: 40, atMost: 52, atLeast: 25 },
    { name: 'idle samples', value: 5, atMost: 5 },
    { name: 'rate', value: 0.5, atLeast: 0.5 },
  ]);
});

test('a figure past its bound fails with its name, value, bound and detail, and is recorded first', ({ task }) => {
  const over = failureOf(() => expectBounded('idle samples', 7, { atMost: 5 }, 'the sleeper, pid 42'));
  expect(over.message).toContain('idle samples = 7, bound: at most 5 (the sleeper, pid 42)');
  expect(over.message).toMatch(/expected 7 to be less than or equal to 5/);
  const under = failureOf(() => expectBounded('busy samples', 3, { atLeast: 25, atMost: 52 }));
  expect(under.message).toContain('busy samples = 3, bound: at least 25 and at most 52');
  expect(task.meta.bounds).toEqual([
    { name: 'idle samples', value: 7, atMost: 5 },
    { name: 'busy samples', value: 3, atMost: 52, atLeast: 25 },
  ]);
});

test('a figure needs a bound, and a name once per test', ({ task }) => {
  expect(() => expectBounded('x', 1, {})).toThrow(/give atMost, atLeast or both/);
  expect(() => expectBounded('x', 1, { atMost: Number.NaN })).toThrow(/finite number/);
  expectBounded('x', 1, { atMost: 2 });
  expect(() => expectBounded('x', 1, { atMost: 2 })).toThrow(/"x" was already checked in this test/);
  expect(task.meta.bounds).toHaveLength(1);
});
