// kprobe and kretprobe on getpid's kernel entry symbol (named per kernel by syscallSymbol): the
// agent makes an exact number of getpid calls, the programs count only the agent's own (its tgid
// is written into a config map first), and the kretprobe sees getpid's return value.
import { beforeEach, expect, test } from 'vitest';
import { AgentError, atLeast, type BpfObject, readU64s, syscalls, syscallSymbol, u32, useGuest } from '../../harness/index.js';

const guest = useGuest({
  suite: 'kprobe',
  from: import.meta.url,
  sources: ['kprobe_count.bpf.c'],
});

// Slots of the `counts` array (kprobe_count.bpf.c).
const ENTRIES = 0;
const RETURNS = 1;
const RET_IS_TGID = 2;
const LAST_RET = 3;

let getpidSym: string;
let agentPid: number;
beforeEach(async () => {
  getpidSym ??= await syscallSymbol(guest, 'getpid');
  // A call of zero system calls just reports the agent's pid.
  agentPid ??= (await syscalls(guest.agent, 'getpid', 0)).pid;
});

async function count(obj: BpfObject, slot: number): Promise<bigint> {
  const hex = await obj.map('counts').lookup(u32(slot));
  return readU64s(hex!)[0];
}

/** Loads the object with the agent's tgid as the only one counted. */
async function loadForAgent(): Promise<BpfObject> {
  const obj = await guest.load('kprobe_count.bpf.c');
  await obj.map('config').update(u32(0), u32(agentPid));
  return obj;
}

/** The agent makes n getpid calls; what counts is what the probes saw (the maps), not its answer. */
async function getpids(n: number): Promise<void> {
  await syscalls(guest.agent, 'getpid', n);
}

test('a kprobe counts exactly the getpid calls the agent makes, through the kprobe PMU or legacy tracefs', async () => {
  const obj = await loadForAgent();
  try {
    const entry = await guest.attach({ type: 'kprobe', obj, prog: 'count_entry', func: getpidSym });
    // Which path the kernel took: the kprobe PMU makes no tracefs event; the legacy path (before
    // 4.17) registers one in kprobe_events, which the kernel lists while it is attached.
    const pmu = (await guest.exec('test -e /sys/bus/event_source/devices/kprobe && echo yes || echo no')).trim() === 'yes';
    expect(entry.legacy, 'an event in kprobe_events').toBe(!pmu);

    expect(await count(obj, ENTRIES)).toBe(0n);
    await getpids(37);
    expect(await count(obj, ENTRIES)).toBe(37n);
    await getpids(500);
    expect(await count(obj, ENTRIES)).toBe(537n);
    // Other system calls do not touch the probe.
    await syscalls(guest.agent, 'getppid', 50);
    expect(await count(obj, ENTRIES)).toBe(537n);
  } finally {
    await obj.unload();
  }
});

test('a kretprobe sees getpid return the agent\'s pid on every call, alongside a kprobe on the same function', async () => {
  const obj = await loadForAgent();
  try {
    const entry = await guest.attach({ type: 'kprobe', obj, prog: 'count_entry', func: getpidSym });
    const ret = await guest.attach({ type: 'kprobe', obj, prog: 'count_return', func: getpidSym, retprobe: true });
    // Where the kernel has no kprobe PMU (before 4.17), libbpf names the tracefs event of the
    // second probe with getpid(), and the first probe, already live, counts that call. The
    // counts start from zero once both probes are in place.
    for (const slot of [ENTRIES, RETURNS, RET_IS_TGID, LAST_RET]) await obj.map('counts').update(u32(slot), '00'.repeat(8));
    await getpids(64);
    expect(await count(obj, ENTRIES)).toBe(64n);
    expect(await count(obj, RETURNS)).toBe(64n);
    expect(await count(obj, RET_IS_TGID)).toBe(64n);
    expect(await count(obj, LAST_RET)).toBe(BigInt(agentPid));
    await ret.detach();
    await entry.detach();
  } finally {
    await obj.unload();
  }
});

test('after detach the kprobe no longer fires', async () => {
  const obj = await loadForAgent();
  try {
    const entry = await guest.attach({ type: 'kprobe', obj, prog: 'count_entry', func: getpidSym });
    await getpids(10);
    expect(await count(obj, ENTRIES)).toBe(10n);
    await entry.detach();
    await getpids(25);
    expect(await count(obj, ENTRIES)).toBe(10n);
    // Attached again, it counts again from where the map stands.
    const again = await guest.attach({ type: 'kprobe', obj, prog: 'count_entry', func: getpidSym });
    await getpids(5);
    expect(await count(obj, ENTRIES)).toBe(15n);
    await again.detach();
  } finally {
    await obj.unload();
  }
});

for (const retprobe of [false, true]) {
  test(`a ${retprobe ? 'kretprobe' : 'kprobe'} on a function that does not exist fails with a clear error`, async () => {
    const obj = await loadForAgent();
    try {
      const func = 'bh_no_such_kernel_function';
      const err = await guest.attach({ type: 'kprobe', obj, prog: retprobe ? 'count_return' : 'count_entry', func, retprobe }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AgentError);
      const e = err as AgentError;
      expect(e.op).toBe('attach_kprobe');
      // The kernel's errno. A kprobe: ENOENT, from the kprobe PMU's perf_event_open or, on the
      // legacy tracefs path (before 4.17), from the write to kprobe_events. A kretprobe: its entry
      // check (kprobe_on_func_entry) cannot find the symbol, which older kernels answer with EINVAL
      // on both paths (seen on 4.14.67's tracefs and 4.19.78's PMU) and newer ones with ENOENT
      // (seen on Debian's 5.10 and later).
      const pmu = (await guest.exec('test -e /sys/bus/event_source/devices/kprobe && echo yes || echo no')).trim() === 'yes';
      const [ENOENT, EINVAL] = [2, 22];
      const kretprobeEnoent = pmu && atLeast(guest.kernel.version, '5.10');
      expect(e.errno).toBe(!retprobe || kretprobeEnoent ? ENOENT : EINVAL);
      expect(e.error).toContain(`${retprobe ? 'kretprobe' : 'kprobe'} on ${func}: no such function in /proc/kallsyms`);
      // And the kernel holds no event for it.
      expect(await guest.exec('cat /sys/kernel/tracing/kprobe_events 2>/dev/null || cat /sys/kernel/debug/tracing/kprobe_events')).not.toContain(func);
      // Nothing was attached: getpid calls are not counted.
      await getpids(3);
      expect(await count(obj, retprobe ? RETURNS : ENTRIES)).toBe(0n);
    } finally {
      await obj.unload();
    }
  });
}

test('the legacy tracefs path (kernels before 4.17 have no kprobe PMU) counts exactly and cleans up its events', async () => {
  // Hide the kprobe PMU as a pre-4.17 kernel would: libbpf decides by reading
  // /sys/bus/event_source/devices/kprobe/type, so an empty directory over it sends the attach
  // through tracefs kprobe_events, as on 4.14.
  const pmu = '/sys/bus/event_source/devices/kprobe';
  const hadPmu = (await guest.exec(`test -e ${pmu}/type && echo yes || echo no`)).trim() === 'yes';
  if (hadPmu) await guest.exec(`mkdir -p /run/no-kprobe-pmu && mount --bind /run/no-kprobe-pmu ${pmu}`);
  const obj = await loadForAgent();
  try {
    const entry = await guest.attach({ type: 'kprobe', obj, prog: 'count_entry', func: getpidSym });
    const ret = await guest.attach({ type: 'kprobe', obj, prog: 'count_return', func: getpidSym, retprobe: true });
    expect([entry.legacy, ret.legacy], 'each made an event in kprobe_events').toEqual([true, true]);
    // libbpf made a p: and an r: event for the symbol in kprobe_events.
    const events = await guest.exec('cat /sys/kernel/tracing/kprobe_events');
    expect(events).toMatch(new RegExp(`^p:\\S+ ${getpidSym}`, 'm'));
    expect(events).toMatch(new RegExp(`^r\\d*:\\S+ ${getpidSym}`, 'm'));

    // libbpf's legacy attach itself calls getpid (to name its events), so the entry probe may
    // already have seen the agent once: count from here.
    const [e0, r0, t0] = [await count(obj, ENTRIES), await count(obj, RETURNS), await count(obj, RET_IS_TGID)];
    expect(e0).toBeLessThanOrEqual(1n);
    await getpids(41);
    expect(await count(obj, ENTRIES)).toBe(e0 + 41n);
    expect(await count(obj, RETURNS)).toBe(r0 + 41n);
    expect(await count(obj, RET_IS_TGID)).toBe(t0 + 41n);

    await entry.detach();
    await ret.detach();
    await getpids(5);
    expect(await count(obj, ENTRIES)).toBe(e0 + 41n);
    // Detaching removed the events it made.
    expect(await guest.exec('cat /sys/kernel/tracing/kprobe_events')).not.toContain(getpidSym);
  } finally {
    await obj.unload();
    if (hadPmu) await guest.exec(`umount ${pmu}`);
  }
});
