// Waiting for a condition that the guest makes true in its own time (a counter a program bumps,
// a callback the kernel runs once a socket is gone): polled, with a deadline that grows with this
// host's measured slowness (harness/base/host-speed.ts), so that a slower host waits longer instead
// of failing.
import { hostSlowness } from './host-speed.js';

/**
 * Polls `cond` every `everyMs` until it holds; false once `ms` (on the reference machines, times
 * this host's slowness) have passed without it. The condition is checked once more at the deadline.
 */
export async function pollUntil(cond: () => Promise<boolean>, ms = 5_000, everyMs = 50): Promise<boolean> {
  const end = performance.now() + ms * hostSlowness();
  for (;;) {
    if (await cond()) return true;
    if (performance.now() > end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
