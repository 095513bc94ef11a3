// The program types the harness attaches, one declaration each (declare.ts), in PROGRAM_TYPES'
// order. attach() (../attach.ts) and PROGRAM_TYPES (suite/progtypes.ts) are made from this list:
// a new program type is its module here and its line below (and its suite, suites/<name>/).
import { af_xdp } from './af_xdp.js';
import { cgroup_skb } from './cgroup_skb.js';
import { cgroup_sock } from './cgroup_sock.js';
import { cgroup_sock_addr } from './cgroup_sock_addr.js';
import { kprobe } from './kprobe.js';
import { kprobe_multi } from './kprobe_multi.js';
import { lwt_in, lwt_out, lwt_xmit } from './lwt.js';
import { flow_dissector, sk_lookup } from './netns.js';
import { perf_event } from './perf_event.js';
import { raw_tracepoint } from './raw_tracepoint.js';
import { sk_msg } from './sk_msg.js';
import { sk_reuseport } from './sk_reuseport.js';
import { sk_skb } from './sk_skb.js';
import { sock_ops } from './sock_ops.js';
import { socket_filter } from './socket_filter.js';
import { struct_ops } from './struct_ops.js';
import { sched_act, sched_cls } from './tc.js';
import { tcx } from './tcx.js';
import { tracepoint } from './tracepoint.js';
import { fentry, lsm } from './tracing.js';
import { uprobe } from './uprobe.js';
import { xdp } from './xdp.js';

export const REGISTRY = [
  socket_filter,
  kprobe,
  sched_cls,
  sched_act,
  tracepoint,
  xdp,
  perf_event,
  cgroup_skb,
  cgroup_sock,
  lwt_in,
  lwt_out,
  lwt_xmit,
  sock_ops,
  sk_skb,
  cgroup_sock_addr,
  raw_tracepoint,
  fentry,
  lsm,
  sk_lookup,
  tcx,
  uprobe,
  kprobe_multi,
  sk_reuseport,
  sk_msg,
  flow_dissector,
  struct_ops,
  af_xdp,
] as const;

export type Declaration = (typeof REGISTRY)[number];
