// What the host gave a guest's vCPUs: each vCPU thread of QEMU ("CPU 0/TCG", "CPU 1/KVM": QEMU
// names them with -name debug-threads=on) is sampled once a second from /proc (schedstat: the
// nanoseconds it ran and the nanoseconds it waited, runnable, for a host CPU; a cgroup's CPU
// quota shows as waiting too). When the kernel reports a stall, a lockup or a hung task, the
// samples over the time the kernel says it was stuck tell whether the host starved the guest: a
// vCPU that waited for a CPU as long as it ran got at most half of the host it asked for, and a
// guest clock that runs on while its CPUs do not is what makes a kernel see a stall that is not
// there. Such a report is the host's doing, not a kernel fault.
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

interface ThreadTime {
  runNs: number;
  waitNs: number;
}
interface Sample {
  at: number;
  threads: Map<number, ThreadTime & { name: string }>;
}

/** How long samples are kept: longer than the longest report window (a hung task's 120 s). */
const KEEP_MS = 300_000;
const EVERY_MS = 1_000;

/** The verdict over a window: the vCPUs' run and wait time, and whether that is starvation. */
export interface Starvation {
  starved: boolean;
  windowMs: number;
  runMs: number;
  waitMs: number;
  perVcpu: { name: string; runMs: number; waitMs: number }[];
  loadavg: string;
  /** The figures in one sentence. */
  text: string;
}

const readText = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

/** The pid of the QEMU process at or under `pid` (QEMU may run under a keeper). */
export function findQemu(pid: number, depth = 3): number | undefined {
  const comm = readText(`/proc/${pid}/comm`)?.trim() ?? '';
  if (comm.startsWith('qemu-system')) return pid;
  if (depth === 0) return undefined;
  for (const child of (readText(`/proc/${pid}/task/${pid}/children`) ?? '').split(/\s+/).filter(Boolean)) {
    const found = findQemu(Number(child), depth - 1);
    if (found) return found;
  }
  return undefined;
}

/** One sample of a QEMU process's vCPU threads, or null when it is gone. */
export function sampleVcpus(qemuPid: number): Sample['threads'] | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${qemuPid}/task`);
  } catch {
    return null;
  }
  const out: Sample['threads'] = new Map();
  for (const tid of tids) {
    const name = readText(`/proc/${qemuPid}/task/${tid}/comm`)?.trim() ?? '';
    if (!/^CPU \d+\/(TCG|KVM)$/.test(name)) continue;
    const st = readText(`/proc/${qemuPid}/task/${tid}/schedstat`)?.trim().split(/\s+/).map(Number);
    if (!st || st.length < 2) continue;
    out.set(Number(tid), { name, runNs: st[0], waitNs: st[1] });
  }
  return out;
}

/**
 * The judgement over two samples: starved when the vCPUs together waited at least as long as
 * they ran (they got at most half the CPU they were ready to use).
 */
export function judge(from: Sample, to: Sample, loadavg: string, window = 'before it'): Starvation {
  const perVcpu: Starvation['perVcpu'] = [];
  for (const [tid, t] of to.threads) {
    const f = from.threads.get(tid) ?? { runNs: 0, waitNs: 0 };
    perVcpu.push({ name: t.name, runMs: Math.round((t.runNs - f.runNs) / 1e6), waitMs: Math.round((t.waitNs - f.waitNs) / 1e6) });
  }
  perVcpu.sort((a, b) => a.name.localeCompare(b.name));
  const runMs = perVcpu.reduce((s, v) => s + v.runMs, 0);
  const waitMs = perVcpu.reduce((s, v) => s + v.waitMs, 0);
  const windowMs = to.at - from.at;
  const starved = perVcpu.length > 0 && waitMs >= runMs;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const each = perVcpu.map((v) => `${v.name} ran ${s(v.runMs)}, waited ${s(v.waitMs)}`).join('; ');
  const text = perVcpu.length
    ? `in the ${s(windowMs)} ${window}, the guest's ${perVcpu.length} vCPU threads ran ${s(runMs)} and waited ${s(waitMs)} for a host CPU (${each}); host load average ${loadavg} on ${availableParallelism()} cores`
    : `no vCPU thread times were sampled over the ${s(windowMs)} before it`;
  return { starved, windowMs, runMs, waitMs, perVcpu, loadavg, text };
}

/** What a guest's vCPUs were doing over a window: waiting for the host, halted, or running. */
export type VcpuState = 'starved' | 'idle' | 'running';

/**
 * The state over a window: idle when the vCPUs ran and waited, between them, under a twentieth of
 * the window (a halted vCPU, waiting for an interrupt or a timer, neither runs nor asks to);
 * otherwise starved as judge() says, or running (the kernel was busy, or spinning).
 */
export function vcpuState(s: Starvation): VcpuState {
  if (s.runMs + s.waitMs < (s.windowMs * s.perVcpu.length) / 20) return 'idle';
  return s.starved ? 'starved' : 'running';
}

/**
 * Why a guest printed nothing over a window, in a sentence, from what its vCPUs did: a host that
 * starved it, a kernel that halted waiting for something that never came, or one that was busy.
 */
export function silenceCause(s: Starvation): string {
  if (!s.perVcpu.length) return s.text;
  const state = vcpuState(s);
  const what =
    state === 'starved'
      ? 'the host starved the guest, so this says nothing of the kernel'
      : state === 'idle'
        ? 'the guest was not starved: its vCPUs were halted, so the kernel was waiting for an interrupt or a timer that did not come'
        : 'the guest was not starved: its vCPUs were running, so the kernel was busy or spinning without printing';
  return `${what} (${s.text})`;
}

/** Samples a QEMU process's vCPU threads every second for as long as it runs. */
export class VcpuMonitor {
  private samples: Sample[] = [];
  private timer: NodeJS.Timeout;
  private qemuPid: number | undefined;

  constructor(private readonly pid: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), EVERY_MS);
    this.timer.unref();
  }

  private sample(): Sample | null {
    this.qemuPid ??= findQemu(this.pid);
    if (this.qemuPid === undefined) return null;
    const threads = sampleVcpus(this.qemuPid);
    if (!threads) {
      this.stop();
      return null;
    }
    const s = { at: performance.now(), threads };
    this.samples.push(s);
    while (this.samples.length > 2 && this.samples[0].at < s.at - KEEP_MS) this.samples.shift();
    return s;
  }

  /**
   * Whether the host starved the guest over the last `windowMs` (the time the kernel says it was
   * stuck), from the oldest sample in that window to now.
   */
  starvation(windowMs: number, window?: string): Starvation | null {
    const now = this.sample() ?? this.samples.at(-1);
    if (!now) return null;
    const from = this.samples.find((s) => s.at >= now.at - windowMs) ?? this.samples[0];
    if (from === now) return null;
    return judge(from, now, (readText('/proc/loadavg') ?? '').split(' ').slice(0, 3).join(' '), window);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * How long the kernel says it was stuck, from the report's line: a soft lockup's "stuck for 23s",
 * a hung task's "blocked for more than 120 seconds"; an RCU stall's default timeout (21 s) and a
 * hard lockup's watchdog threshold (10 s) otherwise.
 */
export function stuckWindowMs(line: string): number {
  const stuck = /stuck for (\d+)s/.exec(line) ?? /blocked for more than (\d+) seconds/.exec(line);
  if (stuck) return Number(stuck[1]) * 1000;
  if (/hard lockup|hard LOCKUP/i.test(line)) return 10_000;
  return 21_000;
}
