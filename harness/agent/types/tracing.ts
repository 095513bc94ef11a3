// fentry (5.5) and lsm (5.7): programs that libbpf attaches through a BPF trampoline, to the
// target their section names (tp_btf/NAME, fentry/FUNC, fexit/FUNC, lsm/HOOK); one attach for both.
import { type AgentProg, type Attached, type AttachTarget, attachLinked, programType } from './declare.js';

/** tp_btf, fentry, fexit, lsm: the target is in the program's section (tp_btf/NAME, fentry/FUNC, lsm/HOOK). */
export type TracingSpec = { type: 'tracing' | 'lsm' } & AgentProg;

const attachBySection = (t: AttachTarget, spec: TracingSpec): Promise<Attached> =>
  attachLinked(t, 'attach_prog', { obj: spec.obj.handle, prog: spec.prog }, `${spec.type} ${spec.prog} (${spec.obj.program(spec.prog).section})`);

/** The program type is libbpf's `tracing` (fentry, fexit, tp_btf): its spec's type is 'tracing'. */
export const fentry = programType({
  name: 'fentry',
  since: '5.5',
  how: 'fentry/fexit through a BPF trampoline (libbpf bpf_program__attach), CO-RE against the kernel\'s BTF',
  probe: { progType: 'tracing', btf: true, config: ['CONFIG_DEBUG_INFO_BTF', 'CONFIG_BPF_JIT'] },
  spec: 'tracing',
  attach: attachBySection,
});

export const lsm = programType({
  name: 'lsm',
  since: '5.7',
  how: 'BPF LSM hook through a BPF trampoline (libbpf bpf_program__attach); needs bpf among the active LSMs',
  probe: { progType: 'lsm', btf: true, config: ['CONFIG_BPF_LSM', 'CONFIG_DEBUG_INFO_BTF'], lsm: 'bpf' },
  attach: attachBySection,
});
