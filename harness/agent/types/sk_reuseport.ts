// sk_reuseport (4.19): a program on an SO_REUSEPORT group, attached through one of its sockets
// (InetSocket.attachReuseport, harness/agent/inet.ts), not through attach().
import { programType } from './declare.js';

export const sk_reuseport = programType({
  name: 'sk_reuseport',
  since: '4.19',
  how: 'SO_ATTACH_REUSEPORT_EBPF on a socket of an SO_REUSEPORT group, with a REUSEPORT_SOCKARRAY',
  probe: { progType: 'sk_reuseport' },
});
