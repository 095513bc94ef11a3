// kprobe (4.1), and kretprobe: a program on a kernel function's entry or return, through the
// kprobe PMU or (kernels before 4.17) tracefs; the result says which.
import { type AgentProg, type Attached, commandsOf, linked, programType } from './declare.js';
import type { GuestCommands } from '../../guest/commands.js';

/** kprobe, uprobe: how the kernel made the probe's event. */
export interface ProbeAttached extends Attached {
  /**
   * The event was made through tracefs (the legacy path, kernels before 4.17): kprobe_events or
   * uprobe_events lists an event for the target that it did not list before the attach. Through
   * the kprobe/uprobe PMU the kernel lists none.
   */
  readonly legacy: boolean;
}

export type KprobeSpec = { type: 'kprobe'; func: string; retprobe?: boolean } & AgentProg;

/** Lines of a tracefs file (kprobe_events, uprobe_events); empty when tracefs has no such file. */
export async function tracefsLines(c: GuestCommands, file: string): Promise<string[]> {
  const out = await c.exec(`cat /sys/kernel/tracing/${file} 2>/dev/null || cat /sys/kernel/debug/tracing/${file} 2>/dev/null || true`);
  return out.split('\n').filter(Boolean);
}

export const kprobe = programType({
  name: 'kprobe',
  since: '4.1',
  how: 'perf_event_open kprobe PMU, or tracefs kprobe_events',
  attach: async (t, spec: KprobeSpec): Promise<ProbeAttached> => {
    const c = commandsOf(t);
    const before = new Set(await tracefsLines(c, 'kprobe_events'));
    const { link } = await t.agent.call('attach_kprobe', { obj: spec.obj.handle, prog: spec.prog, func: spec.func, retprobe: spec.retprobe ?? false });
    const legacy = (await tracefsLines(c, 'kprobe_events')).some((l) => !before.has(l) && /^[pr]\d*:/.test(l) && [spec.func, `${spec.func}+0`].includes(l.split(/\s+/)[1]));
    const { what, detach } = linked(t, link, `${spec.retprobe ? 'kretprobe' : 'kprobe'} ${spec.prog} on ${spec.func}${legacy ? ' (tracefs)' : ''}`);
    return { what, legacy, detach };
  },
});
