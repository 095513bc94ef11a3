import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, open, readFile, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { cached, cacheRoot, contentKey, holderAlive, inputSha256, lockIdentity, sha256 } from '../../harness/base/cache.js';
import { overrideSettings, withSettings } from '../../harness/base/config.js';
import { hostMs } from '../helpers/timeouts.js';

// Each test has a cache of its own (BPF_HARNESS_CACHE on this process's settings).
let restore = () => {};
beforeEach(async () => {
  restore = overrideSettings({ cache: await mkdtemp(join(tmpdir(), 'cache-')) });
});
afterEach(() => restore());

test('content keys differ when any part differs, including how parts are split', () => {
  expect(contentKey('a', 'b')).toBe(contentKey('a', 'b'));
  expect(contentKey('a', 'b')).not.toBe(contentKey('ab'));
  expect(contentKey('a', 'b')).not.toBe(contentKey('a', 'c'));
});

test('an input\'s sum is read again whenever the file changed, even to the same size with its modification time put back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'input-sum-'));
  const f = join(dir, 'module.ko');
  await writeFile(f, 'first contents');
  expect(await inputSha256(f)).toBe(sha256('first contents'));
  expect(await inputSha256(f)).toBe(sha256('first contents'));
  // Overwritten in place with as many bytes, and its mtime set back as cp -p or tar would.
  const { mtime, atime } = await stat(f);
  const fh = await open(f, 'r+');
  await fh.write('FIRST', 0);
  await fh.close();
  await utimes(f, atime, mtime);
  expect(await inputSha256(f)).toBe(sha256('FIRST contents'));
  // Replaced by another file under the same name.
  await writeFile(join(dir, 'new'), 'second');
  await cp(join(dir, 'new'), f, { force: true });
  expect(await inputSha256(f)).toBe(sha256('second'));
});

test('two concurrent users of one entry build it once and both get it', async () => {
  let builds = 0;
  const build = async (dir: string) => {
    builds++;
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(join(dir, 'out'), 'built');
    return { n: builds };
  };
  const [a, b] = await Promise.all([cached({ area: 't', key: 'k1', build }), cached({ area: 't', key: 'k1', build })]);
  expect(builds).toBe(1);
  expect(a.dir).toBe(b.dir);
  expect(await readFile(join(a.dir, 'out'), 'utf8')).toBe('built');
  expect([a.built, b.built].sort()).toEqual([false, true]);
});

test('a corrupted entry fails verification and is rebuilt', async () => {
  let builds = 0;
  const build = async (dir: string) => {
    builds++;
    await writeFile(join(dir, 'out'), 'good');
    return {};
  };
  const first = await cached({ area: 't', key: 'k2', build });
  await writeFile(join(first.dir, 'out'), 'tampered');
  const messages: string[] = [];
  const again = await cached({ area: 't', key: 'k2', build, onProgress: (m) => messages.push(m) });
  expect(builds).toBe(2);
  expect(again.built).toBe(true);
  expect(await readFile(join(again.dir, 'out'), 'utf8')).toBe('good');
  expect(messages.join('\n')).toMatch(/failed verification/);
});

test('a failed build leaves nothing behind and the error surfaces', async () => {
  await expect(cached({ area: 't', key: 'k3', build: async () => Promise.reject(new Error('boom')) })).rejects.toThrow('boom');
  let ran = false;
  await cached({ area: 't', key: 'k3', build: async (d) => { ran = true; await writeFile(join(d, 'x'), '1'); return {}; } });
  expect(ran).toBe(true);
});

const entry = (over: Partial<Parameters<typeof cached>[0]> = {}) =>
  cached({ area: 't', key: 'k4', build: async (d) => { await writeFile(join(d, 'x'), '1'); return {}; }, ...over });

test('a lock naming a live but unrelated process (a reused pid, an old lock format) is stale and removed', async () => {
  const area = join(cacheRoot(), 't');
  await mkdir(area, { recursive: true });
  // pid 1 lives, but the lock has no boot id and start time: it cannot be a run of this boot.
  await writeFile(join(area, 'k4.lock'), '1');
  const said: string[] = [];
  const t = Date.now();
  expect((await entry({ onProgress: (m) => said.push(m) })).built).toBe(true);
  expect(Date.now() - t).toBeLessThan(hostMs(5_000));
  expect(said.join('\n')).toMatch(/removing the stale lock .*k4\.lock/);
  // This process's pid with another start time: the pid was reused.
  const [pid, boot] = lockIdentity().split(' ');
  expect(holderAlive(`${pid} ${boot} 1`)).toBe(false);
  expect(holderAlive(lockIdentity())).toBe(true);
  expect(holderAlive(`${pid} another-boot ${lockIdentity().split(' ')[2]}`)).toBe(false);
});

test('a lock held by a live run is waited for, and the wait gives up naming the lock file', async () => {
  const area = join(cacheRoot(), 't');
  await mkdir(area, { recursive: true });
  await writeFile(join(area, 'k5.lock'), lockIdentity());
  await withSettings({ lockWaitSeconds: '1' }, () => expect(entry({ key: 'k5' })).rejects.toThrow(/gave up after 1 s waiting for the lock .*k5\.lock \(held by "\d+ /));
});

test('temporary entries left by a killed run are swept from every area; a live builder\'s stay', async () => {
  const area = join(cacheRoot(), 'images');
  const dead = join(area, `abc.tmp-999999-00ff00ff`);
  const live = join(area, `abd.tmp-${process.pid}-00ff00ff`);
  await mkdir(dead, { recursive: true });
  await mkdir(live, { recursive: true });
  await entry({ area: 'images' });
  expect(existsSync(dead)).toBe(false);
  expect(existsSync(live)).toBe(true);
});

test('the cache root is readable by its owner only (it holds guest SSH keys)', async () => {
  await entry();
  expect((await stat(cacheRoot())).mode & 0o777).toBe(0o700);
});

test('a kernel entry whose module the image uses was truncated fails verification and is fetched again', async () => {
  // A real Debian kernel entry (the default kernel), copied into this test's cache.
  const { getKernel, imageModules } = await import('../../harness/kernels/catalog.js');
  const real = await withSettings({ cache: undefined }, () => getKernel());
  const entry = dirname(real.modulesDir!);
  const copy = join(cacheRoot(), 'kernels', basename(entry));
  await mkdir(dirname(copy), { recursive: true });
  await cp(entry, copy, { recursive: true });
  const used = await imageModules(join(copy, 'modules'));
  expect(used.length).toBeGreaterThan(0);
  const veth = used.find((m) => /\/veth\.ko/.test(m))!;
  await truncate(join(copy, 'modules', veth), 100);
  const said: string[] = [];
  const again = await getKernel(undefined, { onProgress: (m) => said.push(m) });
  expect(said.join('\n')).toMatch(/failed verification; rebuilding/);
  expect(said.join('\n')).toMatch(/downloading linux-image/);
  expect((await stat(join(again.modulesDir!, veth))).size).toBe((await stat(join(real.modulesDir!, veth))).size);
}, hostMs(300_000));
