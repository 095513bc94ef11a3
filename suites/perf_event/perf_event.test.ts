// perf_event: a program on per-CPU cpu-clock software events (guests under TCG have no PMU)
// sampled at a fixed frequency. A busy process pinned to one CPU collects samples there in
// proportion to the time it ran; a sleeping process collects no more than its own short run time
// allows. Every bound comes from what the guest's kernel measured: each process's run time and
// the times it was scheduled in (/proc/PID/schedstat), and the share of its ticks the sampled CPU
// was given (ticks.h), never from how fast the host was on the day.
import { expect, test } from 'vitest';
import { AgentError, type BpfObject, expectBounded, hostSlowness, readU64s, u32, useGuest } from '../../harness/index.js';
import { describe } from 'vitest';

const guest = useGuest({
  suite: 'perf_event',
  from: import.meta.url,
  sources: ['perf_samples.bpf.c', 'perf_ip.bpf.c'],
});

// 400 Hz: enough samples in a quarter or half second to tell (a few hundred), far below the
// kernel's perf_event_max_sample_rate (which it lowers when sampling takes too long).
const FREQ = 400;
const PERIOD_NS = 1e9 / FREQ;
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

/** Per CPU: the ticks delivered there, and the kernel's time of the first and the last (ticks.h). */
async function ticksPerCpu(obj: BpfObject): Promise<{ count: number; firstNs: bigint; lastNs: bigint }[]> {
  const values = (await obj.map('per_cpu').lookupPerCpu(u32(0)))!;
  return values.map((h) => {
    const [count, firstNs, lastNs] = readU64s(h);
    return { count: Number(count), firstNs, lastNs };
  });
}

/**
 * The share of its ticks a CPU was given between its first and last sample: 1 when the host ran
 * the guest's vCPU throughout; less when the host left it waiting, since a timer that fires late
 * fires once for all the periods it missed.
 */
function delivered(t: { count: number; firstNs: bigint; lastNs: bigint }): number {
  const spanNs = Number(t.lastNs - t.firstNs);
  return t.count < 2 || spanNs <= 0 ? 1 : Math.min(1, ((t.count - 1) * PERIOD_NS) / spanNs);
}

/** What the kernel accounted to a process (/proc/PID/schedstat): ns on a CPU and times scheduled in. */
interface RunTime {
  runNs: number;
  slices: number;
}

/**
 * The samples a task can have taken, from its run time: a cpu-clock timer fires on a grid of one
 * period per CPU, so a stretch of length L on a CPU holds at most floor(L / period) + 1 ticks, and
 * all of a task's stretches at most run / period + the times it was scheduled in. Ticks can be
 * lost, never added: at least half of those its run time spans, scaled by the share of ticks the
 * CPU was given.
 */
function tickBounds(run: RunTime, delivery: number): { atLeast: number; atMost: number } {
  return { atLeast: Math.floor((0.5 * delivery * run.runNs) / PERIOD_NS), atMost: Math.floor(run.runNs / PERIOD_NS) + run.slices };
}

const schedstat = (text: string): RunTime => {
  const [runNs, , slices] = text.trim().split(/\s+/).map(Number);
  return { runNs, slices };
};

/** Shell lines: stop $1's process and wait until it is stopped, so that its run time is final. */
const STOP = 'stop() { kill -STOP $1; while read -r _ _ st _ < /proc/$1/stat; [ "$st" != T ]; do :; done; }';

/**
 * Runs a shell busy loop pinned to BUSY_CPU and, meanwhile, `sleep seconds` (pinned there too, and
 * so sleeping nearly all of its life). The loop is stopped when the sleep has ended, and each
 * process's run time read as the kernel accounted it, once it is final: the loop's once it is
 * stopped, the sleeper's once it has exited (its parent execs a long sleep of its own, so that the
 * sleeper stays a zombie, whose schedstat the kernel keeps, until the parent is killed).
 */
async function busyAndIdle(seconds: number): Promise<{ busy: number; idle: number; busyRun: RunTime; idleRun: RunTime; elapsed: number }> {
  const out = await guest.exec(
    [
      'up() { read u _ < /proc/uptime; echo $u; }',
      STOP,
      // Pin this shell first, so that the loop is born on BUSY_CPU (taskset PROG would run on any
      // CPU until it has set its own affinity).
      `taskset -p -c ${BUSY_CPU} $$ >/dev/null`,
      'f=$(mktemp)',
      't0=$(up)',
      `sh -c 'while :; do :; done' & b=$!`,
      `sh -c 'sleep ${seconds} & echo $! > '$f'; exec sleep 60' & m=$!`,
      `sleep ${seconds}`,
      'read s < $f',
      'while read -r _ _ st _ < /proc/$s/stat; [ "$st" != Z ]; do :; done',
      'read ir iw in_ < /proc/$s/schedstat',
      'kill -KILL $m; wait $m 2>/dev/null',
      'stop $b',
      'read br bw bn < /proc/$b/schedstat',
      'kill -KILL $b; wait $b 2>/dev/null',
      't1=$(up)',
      'echo "$b $s $t0 $t1"; echo "$br $bw $bn"; echo "$ir $iw $in_"; rm -f $f',
    ].join('\n'),
  );
  const [head, busyStat, idleStat] = out.trim().split('\n');
  const [busy, idle, t0, t1] = head.split(/\s+/).map(Number);
  return { busy, idle, busyRun: schedstat(busyStat), idleRun: schedstat(idleStat), elapsed: t1 - t0 };
}

test('a busy process collects samples on its CPU in proportion to its run time; a sleeping one only what its own short run time spans', async () => {
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
    const ticks = await ticksPerCpu(obj);
    const busy = samplesOf(m, run.busy);
    const idle = samplesOf(m, run.idle);
    const delivery = delivered(ticks[BUSY_CPU]);
    const seen = `busy pid ${run.busy}: ${JSON.stringify(busy)} in ${JSON.stringify(run.busyRun)}, idle pid ${run.idle}: ${JSON.stringify(idle)} in ${JSON.stringify(run.idleRun)}, ${run.elapsed} s, cpu ${BUSY_CPU} given ${delivery.toFixed(2)} of its ticks`;
    // The loop ran most of the half second (the CPU was its, but for the sleeper's start).
    expect(run.busyRun.runNs, seen).toBeGreaterThan(0.25e9);
    const b = tickBounds(run.busyRun, delivery);
    expectBounded('busy loop samples', busy.total, { atLeast: Math.max(1, b.atLeast), atMost: b.atMost }, seen);
    expect(busy.cpus, seen).toEqual([BUSY_CPU]);
    // The sleeper runs only to start up (fork, exec), to go to sleep, and to exit: its whole run
    // time spans a few ticks at most.
    expectBounded('sleeper samples', idle.total, { atMost: tickBounds(run.idleRun, delivery).atMost }, seen);

    // Every sample landed on an online CPU and is in the per-CPU total of that CPU.
    for (const k of m.keys()) expect(Number(k.split('/')[1])).toBeLessThan(ncpus);
    for (let cpu = 0; cpu < ticks.length; cpu++) {
      const onCpu = [...m].filter(([k]) => Number(k.split('/')[1]) === cpu).reduce((s, [, n]) => s + n, 0);
      expect(ticks[cpu].count, `cpu ${cpu}`).toBe(onCpu);
    }
    expect(ticks[BUSY_CPU].count).toBeGreaterThanOrEqual(busy.total);

    // With a frequency, cpu-clock samples every 1/FREQ s: the period the program sees is in ns.
    expect(readU64s((await obj.map('info').lookup(u32(0)))!)[0]).toBe(BigInt(PERIOD_NS));
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
    const { atLeast } = tickBounds(first.busyRun, delivered((await ticksPerCpu(obj))[BUSY_CPU]));
    expectBounded('busy loop samples before detach', samplesOf(before, first.busy).total, { atLeast: Math.max(1, atLeast) }, JSON.stringify(first));
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
    expect((await ticksPerCpu(obj)).every((t) => t.count === 0)).toBe(true);
  } finally {
    await obj.unload();
  }
});

// Issue 11: the sampled instruction pointer (bpf_perf_event_data's regs.ip). A shell loop spends
// its time in user space and a `dd` from /dev/zero in the kernel (clearing its buffer): every IP
// sampled from either lies in an executable mapping of that process (/proc/PID/maps, read while
// it runs; or, sampled between its fork and its exec, in the shell's) or in the kernel's text (_stext.._etext in /proc/kallsyms, or a module's in /proc/modules), and most of the loop's are
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
          STOP,
          `sh -c 'while :; do :; done' & u=$!`,
          'dd if=/dev/zero of=/dev/null bs=4M count=1000000 2>/dev/null & k=$!',
          `sleep ${SAMPLE_SECONDS}`,
          // Stopped, not ended: the mappings of the processes that were sampled, and their run
          // time as the kernel accounted it.
          'stop $u; stop $k',
          'echo "@pids $u $k"',
          'echo "@run"; cat /proc/$u/schedstat /proc/$k/schedstat',
          'echo "@maps-user"; cat /proc/$u/maps',
          'echo "@maps-kernel"; cat /proc/$k/maps',
          // A child sampled between its fork and its exec still runs this shell's image.
          'echo "@maps-shell"; cat /proc/$$/maps',
          'kill -KILL $u $k; wait $u $k 2>/dev/null',
          'echo "@kallsyms"; grep -F -e " _stext" -e " _etext" /proc/kallsyms',
          // A softirq that runs on dd's stack (virtio_net's receive) runs a module's code.
          'echo "@modules"; cat /proc/modules',
        ].join('\n'),
      );
      const section = (tag: string) => out.split(`@${tag}`)[1].split('\n@')[0];
      const [userPid, kernelPid] = /@pids (\d+) (\d+)/.exec(out)!.slice(1).map(Number);
      const sym = (name: string) => BigInt(`0x${new RegExp(`^([0-9a-f]+) \\S+ ${name}$`, 'm').exec(section('kallsyms'))![1]}`);
      const text: Range = { lo: sym('_stext'), hi: sym('_etext') };
      // "name size refs deps state 0xADDR": each loaded module's core, as the kernel reports it.
      const modules: Range[] = section('modules')
        .split('\n')
        .map((l) => /^\S+ (\d+) .* 0x([0-9a-f]+)/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ lo: BigInt(`0x${m[2]}`), hi: BigInt(`0x${m[2]}`) + BigInt(m[1]) }));
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
        if (within(ip, text) || modules.some((r) => within(ip, r))) w.kernel += n;
        else if (maps[k.readUInt32LE(8)].some((r) => within(ip, r))) w.user += n;
        else if (shellMaps.some((r) => within(ip, r))) w.beforeExec += n;
        else w.outside.push(ip.toString(16));
      }
      const [userRun, kernelRun] = section('run').trim().split('\n').map(schedstat);
      const runs = { [userPid]: userRun, [kernelPid]: kernelRun };
      const delivery = delivered((await ticksPerCpu(obj))[BUSY_CPU]);
      const seen = `${JSON.stringify(where)}; run times ${JSON.stringify(runs)}; cpu ${BUSY_CPU} given ${delivery.toFixed(2)} of its ticks`;
      // Nothing outside the places an IP can be. A sample between fork and exec, in the shell's
      // image, is rare: the child runs a few hundred microseconds of the shell's code there, two
      // ticks at most on the reference machines, and as many more as this host is slower (the
      // child's code takes longer under a slower TCG; the window around it does not).
      expect(where[userPid].outside, seen).toEqual([]);
      expect(where[kernelPid].outside, seen).toEqual([]);
      const names = { [userPid]: 'user loop', [kernelPid]: 'dd' };
      for (const pid of [userPid, kernelPid]) expectBounded(`${names[pid]} samples before its exec`, where[pid].beforeExec, { atMost: Math.ceil(2 * hostSlowness()) }, seen);
      // Each process was sampled as its run time allows (tickBounds), and mostly where it spends
      // its time.
      for (const pid of [userPid, kernelPid]) {
        const b = tickBounds(runs[pid], delivery);
        const total = where[pid].user + where[pid].kernel + where[pid].beforeExec;
        expectBounded(`${names[pid]} samples`, total, { atLeast: Math.max(1, b.atLeast), atMost: b.atMost }, seen);
      }
      expect(where[userPid].user, seen).toBeGreaterThan(3 * where[userPid].kernel);
      expect(where[kernelPid].kernel, seen).toBeGreaterThan(3 * where[kernelPid].user);
    } finally {
      await obj.unload();
    }
  });
});
