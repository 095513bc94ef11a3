// System calls with exact counts, made by the agent itself (`syscalls`), for the tracing suites:
// kprobes, tracepoints, raw tracepoints and fentry programs that count only the agent's process
// (its pid, which every answer carries, written into the program's config map first).
import type { Agent } from './agent.js';
import type { Ops } from './protocol.js';

/** The system calls the agent makes on request. */
export type SyscallName = Ops['syscalls']['req']['name'];

/**
 * The agent makes `count` calls of `name` and nothing else (the request makes no system call of
 * its own besides them), and answers with its `pid` and `tid`: a count of 0 just asks for those.
 */
export function syscalls(agent: Agent, name: SyscallName, count: number): Promise<Ops['syscalls']['res']> {
  return agent.call('syscalls', { name, count });
}
