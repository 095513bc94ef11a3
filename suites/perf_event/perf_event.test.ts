// perf_event: a program on per-CPU cpu-clock software events (guests under TCG have no PMU)
// sampled at a fixed frequency. A busy process pinned to one CPU collects samples there in
// proportion to the time it ran; a sleeping process collects none.
import { expect, test } from 'vitest';
import type { BpfObject } from '../../harness/agent.js';
import { AgentError, readU64s, u32 } from '../../harness/protocol.js';
import { useGuest } from '../../harness/testing.js';

const guest = useGuest({
  suite: 'perf_event',
  from: import.meta.url,
  sources: ['perf_samples.bpf.c'],
});

const FREQ = 100;
const BUSY_CPU = 0;

/** samples map: `${tgid}/${cpu}` -> count. */
async function samplesByTask(obj: BpfObject): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const e of await obj.map('samples').dump()) {
    const k = Buffer.from(e.key, 'hex');
    out.set(`${k.readUInt32LE(0)}/${k.readUInt32LE(4)}`, Number(readU64s(e.value!)[0]));
  }
  return out;
}

function samplesOf(m: Map<string, number>, tgid: number): { total: number; cpus: number[] } {
  let total = 0;
  const cpus: number[] = [];
  for (const [k, n] of m) {
    const [t, c] = k.split('/').map(Number);
    if (t !== tgid) continue;
    total += n;
    cpus.push(c);
  }
  return { total, cpus: cpus.sort() };
}

async function perCpuTotals(obj: BpfObject): Promise<number[]> {
  const values = (await obj.map('per_cpu').lookupPerCpu(u32(0)))!;
  return values.map((h) => Number(readU64s(h)[0]));
}

/**
 * Runs a shell busy loop pinned to BUSY_CPU and, meanwhile, `sleep seconds` (pinned there too); the loop is killed
 * when the sleep ends. Returns both pids and the elapsed guest time around the busy loop's life.
 */
async function busyAndIdle(seconds: number): Promise<{ busy: number; idle: number; elapsed: number }> {
  const out = await guest.exec(
    [
      'up() { read u _ < /proc/uptime; echo $u; }',
      // Pin this shell first, so that the loop is born on BUSY_CPU (taskset PROG would run on any
      // CPU until it has set its own affinity).
      `taskset -p -c ${BUSY_CPU} $$ >/dev/null`,
      't0=$(up)',
      `sh -c 'while :; do :; done' & b=$!`,
      `sleep ${seconds} & s=$!`,
      'wait $s',
      'kill $b; wait $b 2>/dev/null',
      't1=$(up)',
      'echo $b $s $t0 $t1',
    ].join('\n'),
  );
  const [busy, idle, t0, t1] = out.trim().split(/\s+/).map(Number);
  return { busy, idle, elapsed: t1 - t0 };
}

test('a busy process collects samples on its CPU in proportion to its run time; a sleeping one collects none', async () => {
  const maxRate = Number((await guest.exec('cat /proc/sys/kernel/perf_event_max_sample_rate')).trim());
  expect(maxRate).toBeGreaterThanOrEqual(FREQ);
  const ncpus = Number((await guest.exec('grep -c ^processor /proc/cpuinfo')).trim());

  const obj = await guest.load('perf_samples.bpf.c');
  try {
    const a = await guest.attach({ type: 'perf_event', obj, prog: 'on_sample', freq: FREQ });
    expect(a.cpus, 'perf events the attach opened').toBe(ncpus);
    const SECONDS = 2;
    const run = await busyAndIdle(SECONDS);
    await a.detach();

    const m = await samplesByTask(obj);
    const busy = samplesOf(m, run.busy);
    const idle = samplesOf(m, run.idle);
    const seen = `busy pid ${run.busy}: ${JSON.stringify(busy)}, idle pid ${run.idle}: ${JSON.stringify(idle)}, ${run.elapsed} s`;
    // At least a quarter of FREQ * seconds (TCG on a loaded host loses timer ticks), at most
    // one sample per period of the time it existed, all on the CPU it was pinned to.
    expect(busy.total, seen).toBeGreaterThanOrEqual(Math.floor(0.25 * FREQ * SECONDS));
    expect(busy.total, seen).toBeLessThanOrEqual(Math.ceil(FREQ * run.elapsed) + 2);
    expect(busy.cpus, seen).toEqual([BUSY_CPU]);
    // The sleeper runs only to start up (fork, exec) and to exit: a few samples at most.
    expect(idle.total, seen).toBeLessThanOrEqual(5);

    // Every sample landed on an online CPU and is in the per-CPU total of that CPU.
    const totals = await perCpuTotals(obj);
    for (const k of m.keys()) expect(Number(k.split('/')[1])).toBeLessThan(ncpus);
    for (let cpu = 0; cpu < totals.length; cpu++) {
      const onCpu = [...m].filter(([k]) => Number(k.split('/')[1]) === cpu).reduce((s, [, n]) => s + n, 0);
      expect(totals[cpu], `cpu ${cpu}`).toBe(onCpu);
    }
    expect(totals[BUSY_CPU]).toBeGreaterThanOrEqual(busy.total);

    // With a frequency, cpu-clock samples every 1/FREQ s: the period the program sees is in ns.
    expect(readU64s((await obj.map('info').lookup(u32(0)))!)[0]).toBe(BigInt(1e9 / FREQ));
  } finally {
    await obj.unload();
  }
});

test('after detach no more samples arrive', async () => {
  const obj = await guest.load('perf_samples.bpf.c');
  try {
    const pe = await guest.attach({ type: 'perf_event', obj, prog: 'on_sample', freq: FREQ });
    const first = await busyAndIdle(1);
    await pe.detach();
    const before = await samplesByTask(obj);
    expect(samplesOf(before, first.busy).total).toBeGreaterThanOrEqual(Math.floor(0.25 * FREQ));
    const second = await busyAndIdle(1);
    const after = await samplesByTask(obj);
    expect(after).toEqual(before);
    expect(samplesOf(after, second.busy).total).toBe(0);
  } finally {
    await obj.unload();
  }
});

test('a frequency above kernel.perf_event_max_sample_rate is refused with EINVAL and attaches nothing', async () => {
  const maxRate = Number((await guest.exec('cat /proc/sys/kernel/perf_event_max_sample_rate')).trim());
  const obj = await guest.load('perf_samples.bpf.c');
  try {
    const freq = maxRate + 1;
    const err = await guest.attach({ type: 'perf_event', obj, prog: 'on_sample', freq }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgentError);
    const e = err as AgentError;
    expect(e.op).toBe('attach_perf_event');
    expect(e.errno).toBe(22); // EINVAL
    expect(e.error).toContain(`perf_event_open cpu-clock freq ${freq} on cpu`);
    // Nothing samples: a busy second leaves the maps empty.
    await busyAndIdle(1);
    expect(await obj.map('samples').dump()).toEqual([]);
    expect((await perCpuTotals(obj)).every((n) => n === 0)).toBe(true);
  } finally {
    await obj.unload();
  }
});
