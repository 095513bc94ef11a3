// Where a test's time goes: every agent request and guest command is timed and charged to a phase
// (topology, load, attach, traffic, maps, reset, …), so that `npm run bench` can break a run down.
// Work inside an explicitly named phase (`inPhase('topology', …)`) is charged to that phase only,
// however many requests it makes. Tests of one worker run one at a time, so one process-wide
// clock serves them all.
import { AsyncLocalStorage } from 'node:async_hooks';

export const PHASES = ['setup', 'topology', 'load', 'attach', 'traffic', 'maps', 'guest-exec', 'agent-other', 'reset'] as const;
export type Phase = (typeof PHASES)[number];
export type PhaseTimes = Partial<Record<Phase, number>>;

const current = new AsyncLocalStorage<Phase>();
let totals: PhaseTimes = {};

function charge(phase: Phase, ms: number): void {
  totals[phase] = (totals[phase] ?? 0) + ms;
}

/**
 * Runs `f`, charging its time to `phase` unless an enclosing phase is already being timed (then
 * the enclosing one gets it, once).
 */
export async function inPhase<T>(phase: Phase, f: () => Promise<T>): Promise<T> {
  if (current.getStore()) return f();
  const t = performance.now();
  try {
    return await current.run(phase, f);
  } finally {
    charge(phase, performance.now() - t);
  }
}

/** The phases' times since the last call (milliseconds, rounded), and a fresh start. */
export function takePhaseTimes(): PhaseTimes {
  const out: PhaseTimes = {};
  for (const [k, v] of Object.entries(totals)) out[k as Phase] = Math.round(v);
  totals = {};
  return out;
}

/** A suite file's set-up, in milliseconds: compile, boot (none when the file was handed a booted guest), agent start, copy, baseline. */
export interface SetupTimes {
  compileMs?: number;
  bootMs?: number;
  agentMs?: number;
  copyMs?: number;
  baselineMs?: number;
}
