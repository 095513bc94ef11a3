// The exact end of a check that nothing arrived (harness/agent/traffic.ts): untilJudged waits for the
// program's own count, and gives up after its bound so that the caller falls back to the whole
// quiet window. And the lengths the suites' counters are checked against.
import { expect, test } from 'vitest';
import { frameLength, frames, ipLength, untilJudged } from '../../harness/agent/traffic.js';
import { hostMs } from '../helpers/timeouts.js';

test('untilJudged is true as soon as the count reaches the expected one, polling until then', async () => {
  let reads = 0;
  const t = performance.now();
  const done = await untilJudged({ count: async () => BigInt(++reads >= 4 ? 20 : reads), expected: 20n });
  expect(done).toBe(true);
  expect(reads).toBe(4);
  expect(performance.now() - t).toBeLessThan(hostMs(500));
});

test('untilJudged is false after its bound when the count never gets there (numbers or bigints)', async () => {
  let reads = 0;
  const t = performance.now();
  const done = await untilJudged({ count: async () => (reads++, 19), expected: 20 }, 100);
  expect(done).toBe(false);
  expect(performance.now() - t).toBeGreaterThanOrEqual(100);
  expect(reads).toBeGreaterThan(2);
});

test('a frame is Ethernet + IPv4 + the L4 header + the payload, and a counter of frames holds their number and their bytes', () => {
  expect([ipLength('udp', 64), ipLength('icmp', 56), ipLength('tcp', 0)]).toEqual([92, 84, 40]);
  expect(frameLength('udp', 64)).toBe(106);
  expect(frames('udp', 3, 64)).toEqual({ packets: 3n, bytes: 318n });
  expect(frames('tcp', 0, 0)).toEqual({ packets: 0n, bytes: 0n });
});
