// How fast this host runs guests, measured rather than assumed: a short CPU benchmark on as many
// threads as the host has cores, run at once, against the time it takes on the machines the
// harness's waits were set on. A host that is slower (an older CPU, a loaded machine, a CPU quota
// on its cgroup) gets a factor above 1, and every wait for a guest (harness/guest/qemu.ts timeouts) and
// every bound a test derives from host speed grows with it. It is never below 1: a faster host
// keeps the waits as they are. BPF_HARNESS_TIMEOUT_SCALE, when set, replaces the factor.
//
// Why threads at once: guests under TCG are CPU-bound threads (a guest's vCPUs, QEMU's I/O), so
// what matters is the CPU each thread gets when all cores are asked for at once. A cgroup quota of
// one core on a two-core host leaves one thread's speed alone but halves that of two.
//
// The result is cached for a few minutes, per host boot and per cgroup, in the cache directory, so
// that the processes of one run (the CLI, vitest's workers) measure once; two that ask at once
// measure once between them (a lock file), since two benchmarks at once would each see the other.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { cacheRoot, config, settings } from './config.js';
import { bootId } from './procs.js';

/** The benchmark's work per thread: iterations of an integer hash loop. */
const ITERATIONS = 80_000_000;
/**
 * Milliseconds the slowest thread took, both cores at once, on a quiet 2-core machine of this
 * project's kind (TCG, no KVM): 190-203 ms in five runs, the machine on which this session's
 * soaks and CI runs passed with the waits as they are. A host that takes twice as long gets a
 * factor of 2.
 */
export const REFERENCE_MS = 190;
/** How long a measurement stands for this boot and cgroup. */
const CACHE_MS = 10 * 60_000;

export interface HostSpeed {
  /** Waits and host-speed bounds are multiplied by this (at least 1). */
  factor: number;
  /** Where the factor came from. */
  source: 'measured' | 'cached' | 'set';
  /** The slowest thread's time of each round, in ms (empty when set by the variable). */
  roundsMs: number[];
  threads: number;
  referenceMs: number;
}

// The benchmark, run by a child so that it can be waited for synchronously: each of `threads`
// worker threads runs the loop once per round, all at once; the child prints the slowest
// thread's milliseconds of each round.
const BENCHMARK = `
const { Worker } = require('node:worker_threads');
const [threads, iterations, rounds] = process.argv.slice(1).map(Number);
const body = 'const n = require("node:worker_threads").workerData; const t = process.hrtime.bigint(); let x = 2463534242 | 0; for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; } require("node:worker_threads").parentPort.postMessage([Number(process.hrtime.bigint() - t) / 1e6, x]);';
(async () => {
  const out = [];
  for (let r = 0; r < rounds; r++) {
    const ms = await Promise.all(Array.from({ length: threads }, () => new Promise((res, rej) => {
      const w = new Worker(body, { eval: true, workerData: iterations });
      w.once('message', (m) => { res(m[0]); w.terminate(); });
      w.once('error', rej);
    })));
    out.push(Math.max(...ms));
  }
  console.log(JSON.stringify(out));
})();
`;

/** Runs the benchmark now: the slowest thread's ms of each round. */
export function runBenchmark(threads = availableParallelism(), rounds = 2, iterations = ITERATIONS): number[] {
  const out = execFileSync(process.execPath, ['-e', BENCHMARK, String(threads), String(iterations), String(rounds)], { encoding: 'utf8', timeout: 120_000 });
  const ms = JSON.parse(out) as number[];
  if (!Array.isArray(ms) || ms.length !== rounds || !ms.every((m) => Number.isFinite(m) && m > 0)) throw new Error(`the host speed benchmark printed ${out.trim()}`);
  return ms;
}

/** The factor from rounds: the slower round against the reference, never below 1. */
export function factorOf(roundsMs: number[], referenceMs = REFERENCE_MS): number {
  return Math.max(1, Math.round((Math.max(...roundsMs) / referenceMs) * 100) / 100);
}

/** This process's cgroup, so that a run held to a CPU quota (its own cgroup) measures anew. */
function cgroupKey(): string {
  let text = '';
  try {
    text = readFileSync('/proc/self/cgroup', 'utf8');
  } catch {
    /* no cgroups: one key */
  }
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function readCached(file: string): HostSpeed | null {
  try {
    if (Date.now() - statSync(file).mtimeMs > CACHE_MS) return null;
    const v = JSON.parse(readFileSync(file, 'utf8')) as HostSpeed;
    return typeof v.factor === 'number' && v.factor >= 1 && Array.isArray(v.roundsMs) ? { ...v, source: 'cached' } : null;
  } catch {
    return null;
  }
}

let memo: HostSpeed | undefined;

/**
 * This host's speed factor: BPF_HARNESS_TIMEOUT_SCALE when set; otherwise measured (about half a
 * second, once per process at most, and once every few minutes per host boot and cgroup).
 */
export function hostSpeed(): HostSpeed {
  const set = settings().timeoutScale;
  if (set !== undefined) return { factor: set, source: 'set', roundsMs: [], threads: 0, referenceMs: REFERENCE_MS };
  if (memo) return memo;
  const dir = join(cacheRoot(), 'probe');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `host-speed-${bootId()}-${cgroupKey()}.json`);
  const lock = `${file}.lock`;
  for (const started = Date.now(); ; ) {
    const cached = readCached(file);
    if (cached) return (memo = cached);
    let fd: number | undefined;
    try {
      fd = openSync(lock, 'wx');
    } catch {
      // Another process is measuring; a lock older than the benchmark can take is stale.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 130_000) rmSync(lock, { force: true });
      } catch {
        /* gone meanwhile */
      }
      if (Date.now() - started > 150_000) break;
      sleepSync(50);
      continue;
    }
    try {
      const threads = availableParallelism();
      const roundsMs = runBenchmark(threads);
      const result: HostSpeed = { factor: factorOf(roundsMs), source: 'measured', roundsMs, threads, referenceMs: REFERENCE_MS };
      writeFileSync(`${file}.${process.pid}`, JSON.stringify(result));
      renameSync(`${file}.${process.pid}`, file);
      return (memo = result);
    } finally {
      closeSync(fd);
      rmSync(lock, { force: true });
    }
  }
  // Nobody finished measuring in time: measure without the others.
  const roundsMs = runBenchmark();
  return (memo = { factor: factorOf(roundsMs), source: 'measured', roundsMs, threads: availableParallelism(), referenceMs: REFERENCE_MS });
}

/** The factor alone: waits for a guest and bounds that depend on how fast the host is multiply by it. */
export function hostSlowness(): number {
  return hostSpeed().factor;
}

/** One line for logs: the factor and where it came from. */
export function describeHostSpeed(s: HostSpeed = hostSpeed()): string {
  if (s.source === 'set') return `host speed factor ${s.factor} (set by ${config.timeoutScale.name})`;
  return `host speed factor ${s.factor} (${s.threads} threads at once took ${s.roundsMs.map((m) => Math.round(m)).join(' and ')} ms against ${s.referenceMs} ms on the reference machines${s.source === 'cached' ? '; measured earlier on this boot' : ''})`;
}
