// uprobe and uretprobe on bh_target() of a small static program (uprobe_target.c, built on the
// host with its symbol table and copied in): each run calls it an exact number of times with
// known arguments, and the programs count the calls, sum the arguments and the return values.
// Through the uprobe PMU (4.17) and through the legacy tracefs uprobe_events, which the suite
// forces by hiding the PMU as a pre-4.17 kernel would.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, expect, test } from 'vitest';
import { type BpfObject, compileProgram, GUEST_OBJECT_DIR, hostSlowness, u32, useGuest } from '../../harness/index.js';

const guest = useGuest({ suite: 'uprobe', from: import.meta.url, sources: ['uprobe_count.bpf.c'] });
const TARGET_SRC = join(fileURLToPath(new URL('.', import.meta.url)), 'uprobe_target.c');
const TARGET = `${GUEST_OBJECT_DIR}/bin/uprobe_target`;
const FUNC = 'bh_target';
const C = { calls: 0, argSum: 1, returns: 2, retSum: 3 } as const;

beforeAll(async () => {
  const target = await compileProgram(TARGET_SRC);
  await guest.ssh.put(dirname(target.path), [target.name], `${GUEST_OBJECT_DIR}/bin`);
}, 120_000 * hostSlowness());

/** Runs the target: n calls of bh_target(i * step). */
const run = (n: number, step: number) => guest.ssh.exec(`${TARGET} ${n} ${step}`);
/** What n calls with this step add up to: the arguments, and the return values (2x + 1). */
const sums = (n: number, step: number) => {
  const args = (step * n * (n - 1)) / 2;
  return { argSum: BigInt(args), retSum: BigInt(2 * args + n) };
};

async function counts(obj: BpfObject) {
  const out = {} as Record<keyof typeof C, bigint>;
  for (const [k, slot] of Object.entries(C)) out[k as keyof typeof C] = Buffer.from((await obj.map('counts').lookup(u32(slot)))!, 'hex').readBigInt64LE(0);
  return out;
}
const pmu = async () => (await guest.ssh.exec('test -e /sys/bus/event_source/devices/uprobe/type && echo yes || echo no')).trim() === 'yes';
const uprobeEvents = () => guest.ssh.exec('cat /sys/kernel/tracing/uprobe_events 2>/dev/null || cat /sys/kernel/debug/tracing/uprobe_events');

test('a uprobe and a uretprobe count every call of bh_target with its argument and return value; detached, they stop', async () => {
  const obj = await guest.load('uprobe_count.bpf.c');
  const entry = await guest.attach({ type: 'uprobe', obj, prog: 'on_call', binary: TARGET, func: FUNC });
  const ret = await guest.attach({ type: 'uprobe', obj, prog: 'on_return', binary: TARGET, func: FUNC, retprobe: true });
  // Through the PMU the kernel makes no uprobe_events entry; on the legacy path it does.
  const viaPmu = await pmu();
  expect([entry.legacy, ret.legacy], 'events made in uprobe_events').toEqual([!viaPmu, !viaPmu]);
  expect((await uprobeEvents()).includes(TARGET), 'uprobe_events names the binary').toBe(!viaPmu);

  await run(25, 7);
  const a = sums(25, 7);
  expect(await counts(obj), 'after 25 calls, step 7').toEqual({ calls: 25n, argSum: a.argSum, returns: 25n, retSum: a.retSum });
  await run(1000, 3);
  const b = sums(1000, 3);
  expect(await counts(obj), 'after 1000 more, step 3').toEqual({ calls: 1025n, argSum: a.argSum + b.argSum, returns: 1025n, retSum: a.retSum + b.retSum });

  await ret.detach();
  await run(10, 1);
  expect(await counts(obj), 'uretprobe detached').toMatchObject({ calls: 1035n, returns: 1025n });
  await entry.detach();
  await run(10, 1);
  expect(await counts(obj), 'both detached').toMatchObject({ calls: 1035n, returns: 1025n });
});

test('the legacy tracefs path (kernels before 4.17 have no uprobe PMU) counts exactly and removes its uprobe_events entries on detach', async () => {
  // Hide the PMU as a pre-4.17 kernel would: libbpf looks for /sys/bus/event_source/devices/uprobe/type.
  const pmuDir = '/sys/bus/event_source/devices/uprobe';
  const hadPmu = await pmu();
  if (hadPmu) await guest.ssh.exec(`mkdir -p /run/no-uprobe-pmu && mount --bind /run/no-uprobe-pmu ${pmuDir}`);
  try {
    const obj = await guest.load('uprobe_count.bpf.c');
    const entry = await guest.attach({ type: 'uprobe', obj, prog: 'on_call', binary: TARGET, func: FUNC });
    const ret = await guest.attach({ type: 'uprobe', obj, prog: 'on_return', binary: TARGET, func: FUNC, retprobe: true });
    expect([entry.legacy, ret.legacy], 'both attached through tracefs').toEqual([true, true]);
    // libbpf made a p: and an r: event at the function's offset in the binary.
    const events = await uprobeEvents();
    expect(events).toMatch(new RegExp(`^p:\\S+ ${TARGET}:0x[0-9a-f]+`, 'm'));
    expect(events).toMatch(new RegExp(`^r:\\S+ ${TARGET}:0x[0-9a-f]+`, 'm'));

    await run(41, 5);
    const s = sums(41, 5);
    expect(await counts(obj), 'after 41 calls, step 5').toEqual({ calls: 41n, argSum: s.argSum, returns: 41n, retSum: s.retSum });
    await entry.detach();
    await ret.detach();
    await run(5, 1);
    expect((await counts(obj)).calls, 'after detach').toBe(41n);
    expect(await uprobeEvents(), 'uprobe_events after detach').not.toContain(TARGET);
  } finally {
    if (hadPmu) await guest.ssh.exec(`umount ${pmuDir}`);
  }
});
