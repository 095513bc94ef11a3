// af_xdp (4.18): an AF_XDP socket in an XSKMAP (XskSocket, harness/agent/xsk.ts) that an XDP
// program (attach() with an `xdp` spec) redirects to; no spec of its own.
import { programType } from './declare.js';

export const af_xdp = programType({
  name: 'af_xdp',
  since: '4.18',
  how: 'an AF_XDP socket in an XSKMAP, which an XDP program (netlink, generic mode) redirects to',
  probe: { progType: 'xdp', mapType: 'xskmap' },
});
