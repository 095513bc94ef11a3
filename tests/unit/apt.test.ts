import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { overrideSettings, withSettings } from '../../harness/base/config.js';
import { parseDeb822, parseOneLine, systemMirror } from '../../harness/kernels/apt.js';
import { hostMs } from '../helpers/timeouts.js';

// The system's configuration decides unless BPF_HARNESS_DEBIAN_MIRROR is set.
let restore = () => {};
beforeEach(() => {
  restore = overrideSettings({ debianMirror: undefined });
});
afterEach(() => restore());

async function etc(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'apt-'));
  await mkdir(join(dir, 'sources.list.d'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

test('the mirror comes from a deb822 source, skipping the security archive', async () => {
  const dir = await etc({
    'sources.list.d/debian.sources': [
      'Types: deb',
      'URIs: http://mirror.example/debian-security',
      'Suites: bookworm-security',
      'Components: main',
      '',
      'Types: deb',
      'URIs: http://mirror.example/debian/',
      'Suites: bookworm bookworm-updates',
      'Components: main',
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
    ].join('\n'),
  });
  expect(systemMirror(dir)).toEqual({ uri: 'http://mirror.example/debian', keyring: '/usr/share/keyrings/debian-archive-keyring.gpg' });
});

test('the mirror comes from a one-line sources.list', async () => {
  const dir = await etc({ 'sources.list': '# comment\ndeb [arch=amd64] http://other.example/debian bullseye main contrib\n' });
  expect(systemMirror(dir).uri).toBe('http://other.example/debian');
});

test('a third-party repository is not taken for Debian', async () => {
  const dir = await etc({ 'sources.list.d/x.list': 'deb https://vendor.example/apt cloud-sdk main\n' });
  expect(() => systemMirror(dir)).toThrow(/BPF_HARNESS_DEBIAN_MIRROR/);
});

test('BPF_HARNESS_DEBIAN_MIRROR overrides the system configuration', async () => {
  withSettings({ debianMirror: 'http://local.example/debian/' }, () => expect(systemMirror('/nonexistent').uri).toBe('http://local.example/debian'));
});

test('parsers ignore disabled and non-deb entries', () => {
  expect(parseDeb822('Types: deb-src\nURIs: http://x/debian\nSuites: bookworm\nComponents: main\n')).toEqual([]);
  expect(parseDeb822('Enabled: no\nTypes: deb\nURIs: http://x/debian\nSuites: bookworm\nComponents: main\n')).toEqual([]);
  expect(parseOneLine('deb-src http://x/debian bookworm main')).toEqual([]);
});

test('two first fetches of one Debian suite at once both succeed (the private apt state is updated under a lock)', async () => {
  await withSettings({ cache: await mkdtemp(join(tmpdir(), 'apt-cache-')) }, async () => {
    const { resolveDebian } = await import('../../harness/kernels/apt.js');
    const src = { source: 'debian', suite: 'bookworm', package: 'linux-image-cloud-amd64' } as const;
    const [a, b] = await Promise.all([resolveDebian('6.1', src), resolveDebian('6.1', src)]);
    expect(a.package).toMatch(/^linux-image-\d/);
    expect(b).toEqual(a);
  });
}, hostMs(300_000));
