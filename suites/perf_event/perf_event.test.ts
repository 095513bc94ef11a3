// perf_event: a program on per-CPU cpu-clock software events (guests under TCG have no PMU)
// sampled at a fixed frequency. A busy process pinned to one CPU collects samples there in
// proportion to the time it ran; a sleeping process collects none.
import { expect, test } from 'vitest';
import { AgentError, type BpfObject, readU64s, u32, useGuest } from '../../harness/index.js';
import { describe } from 'vitest';

const guest = useGuest({
  suite: 'perf_event',
  from: import.meta.url,
  sources: ['perf_samples.bpf.c', 'perf_ip.bpf.c'],
});

// 400 Hz: enough samples in a quarter or half second to tell (a few hundred), far below the
// kernel's perf_event_max_sample_rate (which it lowers when sampling takes too long).
const FREQ = 400;
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
    const SECONDS = 0.5;
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
    const first = await busyAndIdle(0.25);
    await pe.detach();
    const before = await samplesByTask(obj);
    expect(samplesOf(before, first.busy).total).toBeGreaterThanOrEqual(Math.floor(0.25 * FREQ * 0.25));
    const second = await busyAndIdle(0.25);
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
    // Nothing samples: a busy quarter second (a hundred samples, had it attached) leaves the maps empty.
    await busyAndIdle(0.25);
    expect(await obj.map('samples').dump()).toEqual([]);
    expect((await perCpuTotals(obj)).every((n) => n === 0)).toBe(true);
  } finally {
    await obj.unload();
  }
});

// Issue 11: the sampled instruction pointer (bpf_perf_event_data's regs.ip). A shell loop spends
// its time in user space and a `dd` from /dev/zero in the kernel (clearing its buffer): every IP
// sampled from either lies in an executable mapping of that process (/proc/PID/maps, read while
// it runs; or, sampled between its fork and its exec, in the shell's) or in the kernel's text (_stext.._etext in /proc/kallsyms), and most of the loop's are
// in user space, most of dd's in the kernel.
describe('the sampled instruction pointer', () => {
  const KERNEL_HALF = 0xffff800000000000n;
  const SAMPLE_SECONDS = 0.5;

  interface Range {
    lo: bigint;
    hi: bigint;
  }
  /** Executable mappings in /proc/PID/maps text. */
  const execRanges = (maps: string): Range[] =>
    maps
      .split('\n')
      .map((l) => /^([0-9a-f]+)-([0-9a-f]+) r-xp /.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ lo: BigInt(`0x${m[1]}`), hi: BigInt(`0x${m[2]}`) }));
  const within = (ip: bigint, r: Range) => ip >= r.lo && ip < r.hi;

  test('each sample\'s IP is in the sampled process\'s executable mappings or the kernel\'s text: a user-space loop is sampled in user space, a dd from /dev/zero in the kernel', async () => {
    const obj = await guest.load('perf_ip.bpf.c');
    try {
      await guest.attach({ type: 'perf_event', obj, prog: 'on_sample_ip', freq: FREQ });
      const out = await guest.exec(
        [
          `taskset -p -c ${BUSY_CPU} $$ >/dev/null`,
          `sh -c 'while :; do :; done' & u=$!`,
          'dd if=/dev/zero of=/dev/null bs=4M count=1000000 2>/dev/null & k=$!',
          `sleep ${SAMPLE_SECONDS}`,
          // Read while both still run: the mappings of the processes that were sampled.
          'echo "@pids $u $k"',
          'echo "@maps-user"; cat /proc/$u/maps',
          'echo "@maps-kernel"; cat /proc/$k/maps',
          // A child sampled between its fork and its exec still runs this shell's image.
          'echo "@maps-shell"; cat /proc/$$/maps',
          'kill $u $k; wait $u $k 2>/dev/null',
          'echo "@kallsyms"; grep -F -e " _stext" -e " _etext" /proc/kallsyms',
        ].join('\n'),
      );
      const section = (tag: string) => out.split(`@${tag}`)[1].split('\n@')[0];
      const [userPid, kernelPid] = /@pids (\d+) (\d+)/.exec(out)!.slice(1).map(Number);
      const sym = (name: string) => BigInt(`0x${new RegExp(`^([0-9a-f]+) \\S+ ${name}$`, 'm').exec(section('kallsyms'))![1]}`);
      const text: Range = { lo: sym('_stext'), hi: sym('_etext') };
      expect(text.lo, 'kallsyms shows addresses').toBeGreaterThanOrEqual(KERNEL_HALF);
      const maps = { [userPid]: execRanges(section('maps-user')), [kernelPid]: execRanges(section('maps-kernel')) };

      const shellMaps = execRanges(section('maps-shell'));
      const where: Record<number, { user: number; kernel: number; beforeExec: number; outside: string[] }> = {
        [userPid]: { user: 0, kernel: 0, beforeExec: 0, outside: [] },
        [kernelPid]: { user: 0, kernel: 0, beforeExec: 0, outside: [] },
      };
      for (const e of await obj.map('ip_samples').dump()) {
        const k = Buffer.from(e.key, 'hex');
        const ip = k.readBigUInt64LE(0);
        const w = where[k.readUInt32LE(8)];
        if (!w) continue;
        const n = Number(readU64s(e.value!)[0]);
        if (within(ip, text)) w.kernel += n;
        else if (maps[k.readUInt32LE(8)].some((r) => within(ip, r))) w.user += n;
        else if (shellMaps.some((r) => within(ip, r))) w.beforeExec += n;
        else w.outside.push(ip.toString(16));
      }
      const seen = JSON.stringify(where);
      // Nothing outside the places an IP can be (a sample between fork and exec, in the shell's
      // image, is rare: a tick or two at most).
      expect(where[userPid].outside, seen).toEqual([]);
      expect(where[kernelPid].outside, seen).toEqual([]);
      for (const pid of [userPid, kernelPid]) expect(where[pid].beforeExec, seen).toBeLessThanOrEqual(2);
      // Enough samples to tell (each has half the CPU; a quarter of the rate allows for ticks TCG
      // under load loses), and each process mostly where it spends its time.
      for (const pid of [userPid, kernelPid]) expect(where[pid].user + where[pid].kernel, seen).toBeGreaterThanOrEqual(Math.floor(0.25 * FREQ * SAMPLE_SECONDS));
      expect(where[userPid].user, seen).toBeGreaterThan(3 * where[userPid].kernel);
      expect(where[kernelPid].kernel, seen).toBeGreaterThan(3 * where[kernelPid].user);
    } finally {
      await obj.unload();
    }
  });
});
