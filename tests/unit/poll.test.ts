// Waits end by the monotonic clock: a host that was paused and set its wall clock on resume (as a
// microVM's is) must not end a wait early and fail a test that had time left.
import { expect, test, vi } from 'vitest';
import { pollUntil } from '../../harness/base/poll.js';
import { withSettings } from '../../harness/base/config.js';
import { waitGone } from '../helpers/processes.js';

/** Date.now() an hour ahead after the first `n` calls: a step of the wall clock during a wait. */
function stepWallClockAfter(n: number) {
  const real = Date.now.bind(Date);
  let calls = 0;
  return vi.spyOn(Date, 'now').mockImplementation(() => real() + (++calls > n ? 3_600_000 : 0));
}

test('pollUntil keeps polling across a step of the wall clock, until its condition holds', async () => {
  let polls = 0;
  const step = stepWallClockAfter(1);
  try {
    expect(await withSettings({ timeoutScale: '1' }, () => pollUntil(async () => ++polls >= 5, 5_000, 10))).toBe(true);
  } finally {
    step.mockRestore();
  }
  expect(polls).toBe(5);
});

test('waitGone waits out its time across a step of the wall clock', async () => {
  const step = stepWallClockAfter(1);
  const t0 = performance.now();
  try {
    // This process does not go away: the wait ends at its deadline, not at once.
    expect(await waitGone(process.pid, 300)).toBe(false);
  } finally {
    step.mockRestore();
  }
  expect(performance.now() - t0).toBeGreaterThanOrEqual(300);
});

test("the wait for a booting guest's SSH keeps its deadline across a step of the wall clock", async () => {
  const { ConsoleLog } = await import('../../harness/guest/console.js');
  const { waitForSsh } = await import('../../harness/guest/ssh-ready.js');
  const { mkdtemp } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const console = new ConsoleLog(join(await mkdtemp(join(tmpdir(), 'console-')), 'console.log'));
  const started = performance.now();
  // A guest that has printed nothing yet: the wait ends at its deadline, with how long it waited.
  const guest = {
    started,
    console,
    running: true,
    exited: null,
    timeouts: { silentMs: 60_000, hungMs: 60_000, sshdMs: 60_000 },
    error: (message: string) => new Error(message),
    dropBootMemory: () => {},
  } as unknown as Parameters<typeof waitForSsh>[0];
  const step = stepWallClockAfter(1);
  try {
    await expect(waitForSsh(guest, undefined, 400)).rejects.toThrow(/printed nothing on the serial console in 0\.[45] s/);
  } finally {
    step.mockRestore();
  }
  expect(performance.now() - started).toBeGreaterThanOrEqual(400);
});
