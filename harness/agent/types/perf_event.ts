// perf_event (4.9): a program on a software cpu-clock sampling event on every CPU; the result
// counts the perf events the attach opened.
import { type AgentProg, type Attached, commandsOf, linked, programType } from './declare.js';
import type { GuestCommands } from '../../guest/commands.js';

/** perf_event: one sampling event per CPU. */
export interface PerfEventAttached extends Attached {
  /** How many perf events the attach opened, as the agent's fd table in /proc lists them. */
  readonly cpus: number;
}

export type PerfEventSpec = { type: 'perf_event'; freq: number } & AgentProg;

/** Perf event fds the agent holds ($PPID: the agent forks the shell that runs this). */
async function agentPerfEvents(c: GuestCommands): Promise<number> {
  return Number((await c.exec("ls -l /proc/$PPID/fd | grep -c 'anon_inode:\\[perf_event\\]' || true")).trim());
}

export const perf_event = programType({
  name: 'perf_event',
  since: '4.9',
  how: 'perf_event_open software cpu-clock, PERF_EVENT_IOC_SET_BPF',
  attach: async (t, spec: PerfEventSpec): Promise<PerfEventAttached> => {
    const c = commandsOf(t);
    const before = await agentPerfEvents(c);
    const { link } = await t.agent.call('attach_perf_event', { obj: spec.obj.handle, prog: spec.prog, freq: spec.freq, event: 'cpu-clock' });
    const { what, detach } = linked(t, link, `perf_event ${spec.prog} (cpu-clock ${spec.freq} Hz)`);
    return { what, cpus: (await agentPerfEvents(c)) - before, detach };
  },
});
