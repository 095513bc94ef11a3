// Why a kernel cannot run a test, found by probing the guest rather than by its version alone:
// whether the program type loads and the attach type is accepted (the agent's `probe` op), the
// kernel's config (/proc/config.gz in the guest, or the config file that came with the kernel),
// the active LSM list (/sys/kernel/security/lsm) and BTF (/sys/kernel/btf/vmlinux). A skip names
// what the kernel lacks:
//   kernel too old (needs 5.5): fentry (kernel 5.4.0)
//   kernel config lacks CONFIG_BPF_LSM: lsm hooks (kernel 6.1.0-…)
//   boot parameter missing (lsm=…,bpf): bpf is not an active LSM (active: lockdown,yama,…) (kernel 5.10.0-…)
//   no BTF (/sys/kernel/btf/vmlinux is missing; kernel config lacks CONFIG_DEBUG_INFO_BTF): …
// A feature backported to an older version number is found (the probe succeeds, the test runs);
// a kernel that is new enough, whose config has what the feature needs, and that still refuses
// it is not skipped: the test runs and fails with the kernel's own error.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TestContext } from 'vitest';
import type { Agent } from '../agent/agent.js';
import { parseConfig } from '../kernels/kconfig.js';
import { atLeast, type Kernel } from '../kernels/catalog.js';
import { PROGRAM_TYPES, type ProgramTypeName } from './progtypes.js';
import type { SshSession } from '../guest/ssh.js';

/** What a test (or a whole suite's program type) needs from the kernel. */
export interface Needs {
  /** What the test exercises, for the reason: "cgroup_sock_addr recvmsg4". */
  feature: string;
  /** The first kernel version with the feature. */
  since: string;
  /** libbpf's name of the program type that must load ("cgroup_sock_addr", "tracing", "lsm"). */
  progType?: string;
  /** libbpf's name of an expected attach type the kernel must accept ("cgroup_udp4_recvmsg"). */
  attachType?: string;
  /** libbpf's name of a map type that must be created ("ringbuf"). */
  mapType?: string;
  /** CONFIG_ symbols that must be y or m. */
  config?: string[];
  /** The kernel's BTF (/sys/kernel/btf/vmlinux) is needed. */
  btf?: boolean;
  /** An LSM that must be in the active list (/sys/kernel/security/lsm), e.g. "bpf". */
  lsm?: string;
}

export interface KernelFacts {
  release: string;
  version: [number, number, number];
  /** The kernel's config, or null when neither the guest nor the host has it. */
  config: Map<string, string> | null;
  configFrom: string | null;
  btf: boolean;
  /** Active LSMs, or null when the kernel has no securityfs lsm file. */
  lsm: string[] | null;
  cmdline: string;
}

export interface ProbeResult {
  progType?: boolean;
  progTypeErrno?: number;
  attachType?: boolean;
  attachTypeErrno?: number;
  mapType?: boolean;
  mapTypeErrno?: number;
}

/** The guest's /proc/config.gz (CONFIG_IKCONFIG_PROC) first, then the config beside the kernel on the host. */
export function hostConfigPath(kernel: Pick<Kernel, 'bzImage'>): string | null {
  const dir = dirname(kernel.bzImage);
  // Catalog and source-built kernels: `config` in the cache entry; a tree's own bzImage
  // (arch/x86/boot/bzImage): the tree's .config.
  for (const p of [join(dir, 'config'), join(dir, '..', '..', '..', '.config')]) if (existsSync(p)) return p;
  return null;
}

const FACTS_SCRIPT = [
  'echo "@release $(uname -r)"',
  'echo "@cmdline $(cat /proc/cmdline)"',
  'test -e /sys/kernel/btf/vmlinux && echo "@btf yes" || echo "@btf no"',
  // securityfs is not in the guest's mount table: mounted here when the kernel has it.
  '[ -e /sys/kernel/security/lsm ] || mount -t securityfs securityfs /sys/kernel/security 2>/dev/null',
  '[ -r /sys/kernel/security/lsm ] && echo "@lsm $(cat /sys/kernel/security/lsm)" || echo "@lsm-none"',
  'if [ -r /proc/config.gz ]; then echo "@config /proc/config.gz"; zcat /proc/config.gz; fi',
  'true',
].join('\n');

/** Parses what FACTS_SCRIPT printed; `hostConfig` is used when the guest has no /proc/config.gz. */
export function parseFacts(out: string, hostConfig: { path: string; text: string } | null): KernelFacts {
  const line = (tag: string) => out.split('\n').find((l) => l.startsWith(`@${tag} `))?.slice(tag.length + 2) ?? '';
  const release = line('release').trim();
  const configAt = out.indexOf('@config ');
  let config: Map<string, string> | null = null;
  let configFrom: string | null = null;
  if (configAt >= 0) {
    const rest = out.slice(configAt);
    configFrom = `${rest.slice(8, rest.indexOf('\n')).trim()} (guest)`;
    config = parseConfig(rest.slice(rest.indexOf('\n') + 1));
  } else if (hostConfig) {
    configFrom = hostConfig.path;
    config = parseConfig(hostConfig.text);
  }
  const lsm = out.split('\n').some((l) => l.startsWith('@lsm ')) ? line('lsm').trim().split(',').filter(Boolean) : null;
  const [a, b, c] = (/^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release) ?? []).slice(1).map((x) => Number(x ?? 0));
  return { release, version: [a || 0, b || 0, c || 0], config, configFrom, btf: line('btf') === 'yes', lsm, cmdline: line('cmdline') };
}

const factsOf = new WeakMap<object, Promise<KernelFacts>>();
const probesOf = new WeakMap<object, Map<string, Promise<ProbeResult>>>();

/** The kernel's facts, read once per guest. */
export function kernelFacts(guest: { ssh: SshSession; kernel: Kernel }): Promise<KernelFacts> {
  let p = factsOf.get(guest.ssh);
  if (!p) {
    p = (async () => {
      const out = await guest.ssh.exec(FACTS_SCRIPT);
      const path = hostConfigPath(guest.kernel);
      return parseFacts(out, path ? { path, text: readFileSync(path, 'utf8') } : null);
    })();
    factsOf.set(guest.ssh, p);
    p.catch(() => factsOf.delete(guest.ssh));
  }
  return p;
}

/** Asks the agent whether the program type loads and the attach type is accepted (once per guest and pair). */
export function probe(agent: Agent, progType: string, attachType?: string): Promise<ProbeResult> {
  let m = probesOf.get(agent);
  if (!m) probesOf.set(agent, (m = new Map()));
  const key = `${progType}/${attachType ?? ''}`;
  let p = m.get(key);
  if (!p) {
    p = agent.call('probe', attachType ? { progType, attachType } : { progType });
    m.set(key, p);
  }
  return p;
}

/** Asks the agent whether the kernel creates a map type (once per guest). */
export function probeMap(agent: Agent, mapType: string): Promise<ProbeResult> {
  let m = probesOf.get(agent);
  if (!m) probesOf.set(agent, (m = new Map()));
  const key = `map:${mapType}`;
  let p = m.get(key);
  if (!p) {
    p = agent.call('probe', { mapType });
    m.set(key, p);
  }
  return p;
}

const enabled = (config: Map<string, string>, sym: string) => ['y', 'm'].includes(config.get(sym) ?? 'n');

/**
 * The reason a kernel cannot run what `needs` describes, or null when the test should run. Pure:
 * the facts and the probe's answer in, the verdict out.
 */
export function verdict(facts: KernelFacts, needs: Needs, probed?: ProbeResult): string | null {
  const on = `${needs.feature} (kernel ${facts.release})`;
  const oldEnough = atLeast(facts.version, needs.since);
  const missingConfig = facts.config ? (needs.config ?? []).filter((s) => !enabled(facts.config!, s)) : [];
  const refused = probed ? probed.progType === false || probed.attachType === false || probed.mapType === false : false;
  if (refused || (!probed && !oldEnough)) {
    if (!oldEnough) return `kernel too old (needs ${needs.since}): ${on}`;
    if (missingConfig.length) return `kernel config lacks ${missingConfig.join(', ')}: ${on}`;
    // New enough, and the config (as far as it is known) has what it needs: not a skip. The
    // test runs, and the kernel's own error says what went wrong.
    return null;
  }
  if (missingConfig.length) return `kernel config lacks ${missingConfig.join(', ')}: ${on}`;
  if (needs.btf && !facts.btf) {
    const why = facts.config && !enabled(facts.config, 'CONFIG_DEBUG_INFO_BTF') ? '; kernel config lacks CONFIG_DEBUG_INFO_BTF' : '';
    return `no BTF (/sys/kernel/btf/vmlinux is missing${why}): ${on}`;
  }
  if (needs.lsm && !(facts.lsm ?? []).includes(needs.lsm)) {
    const active = facts.lsm ? facts.lsm.join(',') : 'none: no /sys/kernel/security/lsm';
    const list = facts.lsm?.length ? `${facts.lsm.join(',')},${needs.lsm}` : `…,${needs.lsm}`;
    return `boot parameter missing (lsm=${list}): ${needs.lsm} is not an active LSM (active: ${active}): ${on}`;
  }
  return null;
}

/** Probes the guest for `needs` and skips the running test with the reason when the kernel lacks something. */
export async function requireFeature(ctx: TestContext, guest: { ssh: SshSession; kernel: Kernel; agent: Agent }, needs: Needs): Promise<void> {
  const reason = await featureVerdict(guest, needs);
  if (reason) ctx.skip(reason);
}

export async function featureVerdict(guest: { ssh: SshSession; kernel: Kernel; agent: Agent }, needs: Needs): Promise<string | null> {
  const facts = await kernelFacts(guest);
  let probed: ProbeResult | undefined;
  if (needs.progType) probed = await probe(guest.agent, needs.progType, needs.attachType);
  if (needs.mapType && probed?.progType !== false && probed?.attachType !== false) probed = { ...probed, ...(await probeMap(guest.agent, needs.mapType)) };
  return verdict(facts, needs, probed);
}

/** What a suite's program type needs (PROGRAM_TYPES): probed when it says how, else by version. */
export function typeNeeds(type: ProgramTypeName): Needs {
  const t = PROGRAM_TYPES[type] as { since: string; probe?: Omit<Needs, 'feature' | 'since'> };
  return { feature: `program type ${type}`, since: t.since, ...(t.probe ?? {}) };
}
