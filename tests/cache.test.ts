import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { cached, contentKey } from '../harness/cache.js';

beforeEach(async () => {
  process.env.BPF_HARNESS_CACHE = await mkdtemp(join(tmpdir(), 'cache-'));
});
afterEach(() => {
  delete process.env.BPF_HARNESS_CACHE;
});

test('content keys differ when any part differs, including how parts are split', () => {
  expect(contentKey('a', 'b')).toBe(contentKey('a', 'b'));
  expect(contentKey('a', 'b')).not.toBe(contentKey('ab'));
  expect(contentKey('a', 'b')).not.toBe(contentKey('a', 'c'));
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
