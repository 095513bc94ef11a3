// socket_filter (3.19): a socket made for the filter, with the filter attached (SO_ATTACH_BPF).
import { type AgentProg, type Attached, programType } from './declare.js';

/** socket_filter: a socket made for the filter, with it attached (SO_ATTACH_BPF). */
export interface SocketAttached extends Attached {
  /** The agent's socket handle (sock_stats, sock_read ...); detach() closes it. */
  readonly sock: number;
}

/** A new socket with the filter on it: AF_PACKET bound to `ifname`, or UDP bound to `addr`:`port`. */
export type SocketFilterSpec = { type: 'socket_filter'; netns?: string; socket: { kind: 'packet'; ifname: string } | { kind: 'udp'; port: number; addr?: string } } & AgentProg;

export const socket_filter = programType({
  name: 'socket_filter',
  since: '3.19',
  how: 'SO_ATTACH_BPF on a packet or UDP socket',
  attach: async (t, spec: SocketFilterSpec): Promise<SocketAttached> => {
    const { sock } = await t.agent.call('sock_open', { netns: spec.netns, ...spec.socket, obj: spec.obj.handle, prog: spec.prog });
    const where = spec.socket.kind === 'packet' ? `packet socket on ${spec.socket.ifname}` : `udp socket on port ${spec.socket.port}`;
    return { what: `socket_filter ${spec.prog} on a ${where}`, sock, detach: async () => void (await t.agent.call('sock_close', { sock })) };
  },
});
