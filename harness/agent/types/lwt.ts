// lwt_in, lwt_out and lwt_xmit (4.10): lightweight-tunnel programs on a route, loaded and attached
// by iproute2's ip in the guest (`ip route add … encap bpf …`); one attach for the three.
import { shq } from '../../base/quote.js';
import { type Attached, type AttachTarget, commandsOf, type FileProg, iproute2, programType } from './declare.js';

export type LwtSpec = {
  type: 'lwt_in' | 'lwt_out' | 'lwt_xmit';
  /** Route prefix, e.g. 10.200.1.0/24 or 10.200.1.2/32. */
  prefix: string;
  dev: string;
  netns?: string;
  /** lwt_xmit: bytes of headroom for pushed headers. */
  headroom?: number;
} & FileProg;

/** A route prefix, which may start with a route type ("local 10.0.0.1/32"): each word quoted. */
const qWords = (s: string) => s.trim().split(/\s+/).map(shq).join(' ');

async function attachLwt(t: AttachTarget, spec: LwtSpec): Promise<Attached> {
  const c = commandsOf(t);
  // `prefix` may start with a route type, e.g. "local 10.200.249.9/32" (then dev lo; ip puts
  // local routes in the local table).
  const ip = iproute2('ip', spec.netns);
  const hook = spec.type.slice(4);
  const headroom = spec.type === 'lwt_xmit' && spec.headroom ? ` headroom ${spec.headroom}` : '';
  await c.exec(`${ip} route add ${qWords(spec.prefix)} encap bpf ${hook} obj ${shq(spec.object)} section ${shq(spec.section)}${headroom} dev ${shq(spec.dev)}`);
  return {
    what: `${spec.type} ${spec.section} on route ${spec.prefix}`,
    detach: async () => void (await c.exec(`${ip} route del ${qWords(spec.prefix)} dev ${shq(spec.dev)}`)),
  };
}

export const lwt_in = programType({ name: 'lwt_in', since: '4.10', how: 'ip route ... encap bpf in', attach: attachLwt });
export const lwt_out = programType({ name: 'lwt_out', since: '4.10', how: 'ip route ... encap bpf out', attach: attachLwt });
export const lwt_xmit = programType({ name: 'lwt_xmit', since: '4.10', how: 'ip route ... encap bpf xmit', attach: attachLwt });
