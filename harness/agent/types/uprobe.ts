// uprobe (4.3), and uretprobe: a program on a function of an ELF file in the guest, through the
// uprobe PMU (4.17) or tracefs; the result says which.
import { type AgentProg, commandsOf, linked, programType } from './declare.js';
import { type ProbeAttached, tracefsLines } from './kprobe.js';

/** `pid`: only that process (default: every process). */
export type UprobeSpec = { type: 'uprobe'; binary: string; func: string; retprobe?: boolean; pid?: number } & AgentProg;

export const uprobe = programType({
  name: 'uprobe',
  since: '4.3',
  how: 'perf_event_open uprobe PMU (4.17), or tracefs uprobe_events',
  probe: { progType: 'kprobe', config: ['CONFIG_UPROBE_EVENTS'] },
  attach: async (t, spec: UprobeSpec): Promise<ProbeAttached> => {
    const c = commandsOf(t);
    const before = new Set(await tracefsLines(c, 'uprobe_events'));
    const { link } = await t.agent.call('attach_uprobe', { obj: spec.obj.handle, prog: spec.prog, binary: spec.binary, func: spec.func, retprobe: spec.retprobe, pid: spec.pid });
    const legacy = (await tracefsLines(c, 'uprobe_events')).some((l) => !before.has(l) && l.split(/\s+/)[1]?.startsWith(`${spec.binary}:`));
    const { what, detach } = linked(t, link, `${spec.retprobe ? 'uretprobe' : 'uprobe'} ${spec.prog} on ${spec.binary}:${spec.func}${legacy ? ' (tracefs)' : ''}`);
    return { what, legacy, detach };
  },
});
