// bpf-harness's public surface: what suite files and other programs use. Suites in this repository
// and in projects that depend on the harness import from here (`import { useGuest } from
// 'bpf-harness'`); everything else in harness/ is the implementation behind it.
export { useGuest, GUEST_OBJECT_DIR, type Guest, type GuestOptions } from './suite/testing.js';
export { useVethPair, useCgroup } from './suite/fixtures.js';
export { expectVerifierRejects } from './agent/verifier.js';
export { expectBounded, type Bounded } from './report/bounds.js';
export { Cgroup } from './agent/cgroup.js';
export {
  attach,
  syscallSymbol,
  iproute2,
  IP_PIN_DIR,
  TC_PIN_DIR,
  SOCK_ADDR_HOOKS,
  type Attached,
  type AttachSpec,
  type AttachResult,
  type AttachTarget,
  type XdpAttached,
  type ProbeAttached,
  type PerfEventAttached,
  type SocketAttached,
  type SockAddrHook,
} from './agent/attach.js';
export { send, sendAllowingErrors, UdpSink, untilJudged, linkStats, ipLength, frameLength, frames, ETH_HLEN, IP_PROTO, SETTLE_MS, type Judged, type SendJudged, type SendRequest, type Proto, type SendOptions, type SendResult } from './agent/traffic.js';
export { VethPair, type Endpoint, type VethPairOptions } from './agent/topology.js';
export { InetSocket, type InetSocketRequest, type InetSocketOpened, type InetMessage } from './agent/inet.js';
export { tcpPairs, StreamSocket, type TcpPair, type TcpPairRequest, type StreamRead, type SockInfo } from './agent/tcp-pair.js';
export { XskSocket, type XskRequest, type XskStats } from './agent/xsk.js';
export { EventReader, type EventsRead } from './agent/events.js';
export { syscalls, type SyscallName } from './agent/syscalls.js';
export { Agent, BpfObject, BpfMap } from './agent/agent.js';
export { AgentError, readU64s, readU32, u32, u64, mac, ipv4 } from './agent/wire.js';
export type { Hex, Ops, MapEntry, MapInfo, MapRef } from './agent/protocol.js';
export { atLeast, getKernel, type Kernel } from './kernels/catalog.js';
export { Vm, VmError, type VmOptions, type BootCause } from './guest/vm.js';
export { hostSlowness, hostSpeed, describeHostSpeed, type HostSpeed } from './base/host-speed.js';
export { pollUntil } from './base/poll.js';
// The environment variables the harness reads, and their values, read once per process (e.g. settings().lsmAppend for a suite's own command line).
export { config, settings, type Settings } from './base/config.js';
export { SshSession } from './guest/ssh.js';
export { CommandError, type ExecResult, type GuestCommands } from './guest/commands.js';
export { compileAll, compileProgram, CompileError } from './suite/compile.js';
export { type ProgramOptions, type ProgramResult } from './guest/program.js';
export { PROGRAM_TYPES, type ProgramTypeName } from './suite/progtypes.js';
export { requireFeature, featureVerdict, verdict, kernelFacts, type Needs, type KernelFacts } from './suite/probe.js';
export { loadCore, vmlinuxHeaderDir } from './suite/btf.js';
