// Where a test's time goes: every agent request and guest command is timed and charged to a phase
// (topology, load, attach, traffic, maps, reset, …), so that `npm run bench` can break a run down.
// Work inside an explicitly named phase (`inPhase('topology', …)`) is charged to that phase only,
// however many requests it makes. Tests of one worker run one at a time, so one process-wide
// clock serves them all.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { OpName } from './protocol.js';

export const PHASES = ['setup', 'topology', 'load', 'attach', 'traffic', 'maps', 'guest-exec', 'agent-other', 'reset'] as const;
export type Phase = (typeof PHASES)[number];
export type PhaseTimes = Partial<Record<Phase, number>>;

/** The phase of each agent request (every op: the compiler checks it against protocol.ts). */
const AGENT_OP_PHASE: Record<OpName, Phase> = {
  hello: 'agent-other',
  keep: 'agent-other',
  load: 'load',
  unload: 'load',
  attach_xdp: 'attach',
  detach_xdp: 'attach',
  attach_cgroup: 'attach',
  detach_cgroup: 'attach',
  attach_kprobe: 'attach',
  attach_tracepoint: 'attach',
  attach_perf_event: 'attach',
  detach: 'attach',
  sockmap_add: 'attach',
  map_lookup: 'maps',
  map_update: 'maps',
  map_delete: 'maps',
  map_dump: 'maps',
  udp_listen: 'traffic',
  sock_stats: 'traffic',
  sock_close: 'traffic',
  send: 'traffic',
  syscalls: 'traffic',
  sock_open: 'traffic',
  tcp_pair: 'traffic',
  sock_write: 'traffic',
  sock_read: 'traffic',
  sock_create_test: 'traffic',
  sock_info: 'traffic',
  veth_pair: 'topology',
  reset: 'reset',
  sysctl_snapshot: 'reset',
  sysctl_restore: 'reset',
  run: 'guest-exec',
  probe: 'agent-other',
  attach_prog: 'attach',
  attach_tcx: 'attach',
  attach_uprobe: 'attach',
  attach_kprobe_multi: 'attach',
  attach_struct_ops: 'attach',
  inet_attach_reuseport: 'attach',
  inet_sockmap_add: 'attach',
  events_open: 'maps',
  events_read: 'maps',
  xsk_open: 'traffic',
  xsk_stats: 'traffic',
  inet_socket: 'traffic',
  inet_connect: 'traffic',
  inet_send: 'traffic',
  inet_recv: 'traffic',
  inet_close: 'traffic',
};

export const agentOpPhase = (op: OpName): Phase => AGENT_OP_PHASE[op];

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
