// xdp (4.8): a program on a device through netlink, generic or native; the result is what the
// kernel reports on the device afterwards.
import { type AgentProg, type Attached, commandsOf, iproute2, programType } from './declare.js';
import { shq } from '../../base/quote.js';
import type { GuestCommands } from '../../guest/commands.js';

/** XDP: what the kernel reports on the device afterwards (netlink, through `ip -j link`). */
export interface XdpAttached extends Attached {
  readonly mode: 'generic' | 'native' | 'offload';
  /** The id of the program the kernel runs there. */
  readonly progId: number;
}

export type XdpSpec = { type: 'xdp'; ifname: string; netns?: string; mode?: 'generic' | 'native' | 'any' } & AgentProg;

/** The kernel's XDP mode and program id on a device (IFLA_XDP, through ip's JSON). */
async function xdpOnDevice(c: GuestCommands, ifname: string, netns?: string): Promise<{ mode: XdpAttached['mode'] | 'none'; progId: number }> {
  const [link] = JSON.parse(await c.exec(`${iproute2('ip', netns)} -j link show dev ${shq(ifname)}`)) as { xdp?: { mode: number; prog?: { id: number } } }[];
  const mode = ({ 1: 'native', 2: 'generic', 3: 'offload' } as const)[link.xdp?.mode ?? 0] ?? 'none';
  return { mode, progId: link.xdp?.prog?.id ?? 0 };
}

export const xdp = programType({
  name: 'xdp',
  since: '4.8',
  how: 'netlink (generic or native XDP)',
  attach: async (t, spec: XdpSpec): Promise<XdpAttached> => {
    const used = await spec.obj.attachXdp(spec.prog, spec.ifname, { netns: spec.netns, mode: spec.mode ?? 'generic' });
    const seen = await xdpOnDevice(commandsOf(t), spec.ifname, spec.netns);
    if (seen.mode === 'none') throw new Error(`xdp ${spec.prog} on ${spec.ifname}: the attach succeeded but the kernel reports no XDP program on the device`);
    return {
      what: `xdp ${spec.prog} on ${spec.ifname} (${seen.mode})`,
      mode: seen.mode,
      progId: seen.progId,
      detach: async () => void (await t.agent.call('detach_xdp', { ifname: spec.ifname, netns: spec.netns, mode: used })),
    };
  },
});
