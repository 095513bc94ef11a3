// The guest agent on this host's own kernel: images/agent/test/agent-smoke.sh drives every
// operation over the JSON-lines protocol in two network namespaces of its own (root needed).
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { system } from '../../harness/base/config.js';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { hostMs } from '../helpers/timeouts.js';

const root = process.getuid?.() === 0;

test('the agent answers every operation correctly on the host kernel (needs root: namespaces and BPF)', async (ctx) => {
  // In CI it must run: there, not being root is a failure, not a skip.
  if (!root && system.ci()) expect.fail('the agent smoke test needs root (namespaces, BPF), and CI must run it');
  if (!root) ctx.skip('needs root: the smoke test makes namespaces and loads BPF programs');
  // The agent the guests run (the image's build of it), not one more build of the same sources.
  const { imageAgent } = await import('../../harness/guest/image.js');
  const r = await execa('bash', [join(REPO_ROOT, 'images/agent/test/agent-smoke.sh'), await imageAgent()], { reject: false, all: true });
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(r.all ?? '');
  expect(summary, r.all).not.toBeNull();
  const failures = (r.all ?? '').split('\n').filter((l) => /^FAIL/.test(l));
  expect(failures, r.all).toEqual([]);
  expect(Number(summary![2])).toBe(0);
  expect(Number(summary![1])).toBeGreaterThan(100);
  expect(r.exitCode).toBe(0);
}, hostMs(300_000));
