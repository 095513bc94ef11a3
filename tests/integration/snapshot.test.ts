// Guests start from a snapshot of their kernel's booted guest (harness/guest/snapshot.ts): restored,
// each with randomness of its own and the host's time, over an SSH connection of its own; the
// snapshot itself is never written; one that will not load or fails its checksum gives way to a
// boot, which saves a new one; --no-snapshot boots.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { bootConfig } from '../../harness/guest/boot-command.js';
import { tryPublish, verifyEntry } from '../../harness/base/cache.js';
import { config, resolveSettings } from '../../harness/base/config.js';
import { BOOT_CONSOLE, canReseed, DEVICES_FILE, dropSnapshot, findSnapshot, MEMORY_FILE, pruneSnapshots, SNAPSHOT_AREA, SNAPSHOT_UNUSED_MS, snapshotKey } from '../../harness/guest/snapshot.js';
import { planGuest, Vm, type VmEvent, type VmOptions } from '../../harness/guest/vm.js';
import { cli } from '../helpers/cli.js';
import { defaultKernel } from '../helpers/kernel.js';
import { hostMs } from '../helpers/timeouts.js';

/** Starts a guest, keeping its events. */
/** A start's options with the run's default kernel. */
type StartOptions = Omit<VmOptions, 'kernel'>;
const withKernel = async (o: StartOptions = {}): Promise<VmOptions> => ({ kernel: await defaultKernel(), ...o });

async function start(opts: StartOptions) {
  const events: VmEvent[] = [];
  const vm = await Vm.start({ ...(await withKernel(opts)), onEvent: (e) => events.push(e) });
  const said = events.filter((e) => e.type === 'progress').map((e) => (e as { message: string }).message);
  return { vm, events, said };
}

// Guests of their own (a command-line word no other test uses): these tests break their snapshots on purpose.
const own = (what: string): StartOptions => ({ label: `snapshot-${what}`, append: `bpf_harness.snapshot_test=${what}` });
const keysMade: string[] = [];
afterAll(async () => {
  for (const k of keysMade) await dropSnapshot(k);
});

test('a guest starts from its kernel\'s snapshot: its own randomness, the host\'s time, and the snapshot as it was saved', async () => {
  // A start saves the snapshot when there is none.
  if (!(await planGuest(await withKernel())).snapshot) await (await Vm.start(await withKernel({ label: 'snapshot-save' }))).stop();
  const g = await planGuest(await withKernel());
  expect(g.snapshot, 'a start saved no snapshot of the default kernel').not.toBeNull();
  const [a, b] = await Promise.all([start({ label: 'snapshot-a' }), start({ label: 'snapshot-b' })]);
  try {
    for (const { vm, events } of [a, b]) {
      expect(vm.restoredFrom?.dir).toBe(g.snapshot!.dir);
      expect(events).toContainEqual(expect.objectContaining({ type: 'ready', from: 'snapshot' }));
      // Its console says where it came from, and where the console of the saved boot is.
      expect((await readFile(vm.console.path, 'utf8')).split('\n')[0]).toBe(`[harness] restored from the guest snapshot ${g.snapshot!.dir}; the console of the boot it saved is ${g.snapshot!.bootConsole}`);
    }
    // Two guests restored from one snapshot: their random generators were reseeded apart.
    const random = 'head -c 32 /dev/urandom | od -An -tx1 | tr -d " \\n"';
    const [ra, rb] = await Promise.all([a.vm.ssh.exec(random), b.vm.ssh.exec(random)]);
    expect(ra).toMatch(/^[0-9a-f]{64}$/);
    expect(ra).not.toBe(rb);
    // Its clock is the host's (the snapshot's was that of the save): off by no more than the
    // step's own measured error, to the second the guest reads.
    const err = a.vm.clockErrorMs!;
    expect(err).toBeGreaterThan(0);
    const before = Date.now();
    const secs = Number((await a.vm.ssh.exec('date +%s')).trim());
    const after = Date.now();
    expect(secs).toBeGreaterThanOrEqual(Math.floor((before - err) / 1000));
    expect(secs).toBeLessThanOrEqual(Math.ceil((after + err) / 1000));
    // The guest writes its memory (16 MiB into its tmpfs) ...
    await a.vm.ssh.exec('head -c 16777216 /dev/urandom > /tmp/fill && sync');
  } finally {
    await Promise.all([a.vm.stop(), b.vm.stop()]);
  }
  // ... and the snapshot, which it mapped copy-on-write, is still as it was saved.
  expect(await verifyEntry(g.snapshot!.dir)).toBeNull();
}, hostMs(240_000));

test('a snapshot that QEMU cannot load gives way to a boot, with one line saying so, and the boot saves a good one', async () => {
  const g = await planGuest(await withKernel(own('load')));
  const key = g.key!;
  keysMade.push(key);
  await dropSnapshot(key);
  // An entry that verifies (its manifest is its own) but whose device state is not QEMU's.
  await tryPublish({
    area: SNAPSHOT_AREA,
    key,
    sparse: [MEMORY_FILE],
    build: async (tmp) => {
      await writeFile(join(tmp, DEVICES_FILE), 'not a migration stream');
      const mem = await open(join(tmp, MEMORY_FILE), 'w');
      await mem.truncate(1024 * 2 ** 20);
      await mem.close();
      await writeFile(join(tmp, BOOT_CONSOLE), '');
      return {};
    },
  });
  const broken = await findSnapshot(key);
  expect(broken).not.toBeNull();
  const first = await start(own('load'));
  try {
    expect(first.vm.restoredFrom).toBeUndefined();
    expect(first.said.filter((m) => /did not restore/.test(m))).toEqual([
      expect.stringMatching(new RegExp(`^the guest snapshot ${broken!.dir} did not restore \\(QEMU exited \\(code \\d+\\): .*\\); booting the guest instead, and saving a new snapshot$`)),
    ]);
    expect(first.events).toContainEqual(expect.objectContaining({ type: 'ready', from: 'boot' }));
  } finally {
    await first.vm.stop();
  }
  const saved = await findSnapshot(key);
  expect(saved).not.toBeNull();
  expect(await readFile(saved!.devices, 'utf8').then((d) => d.startsWith('not a migration stream'))).toBe(false);
  const second = await start(own('load'));
  try {
    expect(second.vm.restoredFrom?.dir).toBe(saved!.dir);
    expect((await second.vm.ssh.exec('echo ok')).trim()).toBe('ok');
  } finally {
    await second.vm.stop();
  }
}, hostMs(240_000));

test('a snapshot whose memory changed fails its checksum, is removed with one line, and the boot saves a new one', async () => {
  // The good snapshot the test above ended with (or one saved now).
  let g = await planGuest(await withKernel(own('load')));
  if (!g.snapshot) await (await Vm.start(await withKernel(own('load')))).stop();
  g = await planGuest(await withKernel(own('load')));
  expect(g.snapshot).not.toBeNull();
  // One byte of the guest's memory, flipped.
  const fh = await open(g.snapshot!.memory, 'r+');
  const byte = Buffer.alloc(1);
  await fh.read(byte, 0, 1, 4096);
  byte[0] ^= 0xff;
  await fh.write(byte, 0, 1, 4096);
  await fh.close();
  const r = await start(own('load'));
  try {
    expect(r.vm.restoredFrom).toBeUndefined();
    expect(r.said).toContainEqual(`cache entry ${SNAPSHOT_AREA}/${g.key} failed verification (${MEMORY_FILE} does not match its checksum); removing it`);
    expect(r.said).toContainEqual(expect.stringMatching(/^saved a guest snapshot of kernel \S+ \(\d+ MiB\) in /));
  } finally {
    await r.vm.stop();
  }
  expect(await verifyEntry((await findSnapshot(g.key!))!.dir)).toBeNull();
}, hostMs(240_000));

describe('--no-snapshot and BPF_HARNESS_SNAPSHOT=0 boot every guest', () => {
  const dryRun = (...args: string[]) => cli(['boot', '--dry-run', ...args]);

  test('the setting and the flag', async () => {
    const read = (raw: string | undefined) => resolveSettings({ [config.snapshot.name]: raw }).snapshot;
    for (const [raw, want] of [[undefined, true], ['', true], ['1', true], ['0', false]] as const) expect(read(raw)).toBe(want);
    expect(() => read('yes')).toThrow(/BPF_HARNESS_SNAPSHOT must be 1 or 0, not "yes"/);
    // The default kernel has a snapshot (the first test saved it): a start restores it, unless told not to.
    const [restore, plain] = await Promise.all([dryRun(), dryRun('--no-snapshot')]);
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(restore.stdout).toMatch(/ -incoming defer( |$)/);
    expect(restore.stdout).toMatch(/memory-backend-file,id=ram0,size=1024M,mem-path=\S+\/snapshots\/[0-9a-f]+\/memory,share=off/);
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(plain.stdout).not.toMatch(/-incoming|-qmp|memory-backend-file|vmgenid/);
    expect(plain.stderr).toMatch(/a boot of kernel/);
  }, hostMs(120_000));
});

test('the key covers the machine but not what each start chooses; a kernel that cannot reseed on demand is not saved', async () => {
  const g = await planGuest(await withKernel());
  const base = { snapshot: { qmp: '', memoryFile: { path: '', shared: true } } };
  const key = (extra: object) => snapshotKey(bootConfig(g.plan(0, { ...base, ...extra })));
  const k = await key({});
  expect(await key({ sshPort: 12345, seed: 'ab'.repeat(64) })).toBe(k);
  expect(await key({ snapshot: { qmp: '/tmp/other.sock', memoryFile: { path: '/dev/shm/x', shared: true } } })).toBe(k);
  for (const differs of [{ memoryMiB: 2048 }, { cpus: 1 }, { append: 'quiet' }, { rng: true }, { accel: 'kvm' }]) expect(await key(differs), JSON.stringify(differs)).not.toBe(k);
  // The agent's two answers (images/agent/entropy.c), as init puts them on the console.
  expect(canReseed('entropy: credited 512 bits; the input pool holds 256; reseeded the CRNG')).toBe(true);
  expect(canReseed('entropy: credited 512 bits; the input pool holds 512; cannot reseed the CRNG on demand (RNDRESEEDCRNG: Invalid argument)')).toBe(false);
  expect(canReseed(undefined)).toBe(false);
}, hostMs(60_000));

test('snapshots that no start used for two weeks are removed when one is saved; one in use stays', async () => {
  const publish = async (key: string) => {
    await tryPublish({ area: SNAPSHOT_AREA, key, build: async (tmp) => writeFile(join(tmp, DEVICES_FILE), key) });
    return (await findSnapshot(key))!;
  };
  const [stale, recent] = await Promise.all([publish(randomBytes(12).toString('hex')), publish(randomBytes(12).toString('hex'))]);
  keysMade.push(stale.key, recent.key);
  const old = new Date(Date.now() - SNAPSHOT_UNUSED_MS - 3600_000);
  await utimes(stale.dir, old, old);
  const said: string[] = [];
  const removed = await pruneSnapshots(SNAPSHOT_UNUSED_MS, (m) => said.push(m));
  expect(removed).toContain(stale.key);
  expect(removed).not.toContain(recent.key);
  expect(existsSync(stale.dir)).toBe(false);
  expect(await findSnapshot(recent.key)).not.toBeNull();
  expect(said).toEqual([expect.stringMatching(new RegExp(`^removed \\d+ guest snapshots? unused for 14 days: .*${stale.key}`))]);
});
