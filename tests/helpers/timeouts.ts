// Bounds of the harness's own tests that depend on how fast the host is: each is a figure from
// the machines the waits were set on times this host's measured slowness (harness/base/host-speed.ts),
// so that a slower or loaded host takes longer without failing. The failure-path tests wait out
// a fraction of the harness's own bounds (which scale the same way): a guest that never starts
// sshd, never answers, or stops answering keepalives fails within that fraction of the real bound.
import { withSettings } from '../../harness/base/config.js';
import { hostSlowness } from '../../harness/base/host-speed.js';

/** `ms` on the reference machines, on this host. */
export const hostMs = (ms: number): number => Math.round(ms * hostSlowness());

/**
 * Runs `f` with the harness's waits at `fraction` of what they are on this host (BPF_HARNESS_TIMEOUT_SCALE
 * on this process's settings, not in its environment), and puts back the settings before when it ends.
 */
export async function withTimeoutScale<T>(fraction: number, f: () => Promise<T>): Promise<T> {
  return withSettings({ timeoutScale: scaleFor(fraction) }, f);
}

/** The BPF_HARNESS_TIMEOUT_SCALE for a child run whose waits are `fraction` of this host's. */
export const scaleFor = (fraction: number): string => String(fraction * hostSlowness());
