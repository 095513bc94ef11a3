import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { atLeast, bzImageRelease, loadCatalog, loadOrder, lookupKernel, parseModulesDep, parseRelease, UnknownKernelError } from '../../harness/kernels/catalog.js';
import { hostMs } from '../helpers/timeouts.js';

test('the catalog has a default kernel and the Debian kernels the issue names', () => {
  const c = loadCatalog();
  expect(c.kernels[c.default]).toBeDefined();
  expect(c.default).toBe('6.1');
  expect(lookupKernel('5.10', c)).toMatchObject({ source: 'debian', suite: 'bullseye' });
});

test('an unknown kernel name lists the known ones', () => {
  expect(() => lookupKernel('3.2')).toThrow(UnknownKernelError);
  expect(() => lookupKernel('3.2')).toThrow(/known kernels are 6\.1, 5\.10/);
});

test('a path is a local bzImage', () => {
  expect(lookupKernel('/boot/vmlinuz-x', loadCatalog(), '/mods')).toEqual({ source: 'local', bzImage: '/boot/vmlinuz-x', modules: '/mods' });
});

test('kernel versions compare by major, minor, patch', () => {
  expect(parseRelease('6.1.0-50-cloud-amd64')).toEqual([6, 1, 0]);
  expect(parseRelease('4.14.336')).toEqual([4, 14, 336]);
  expect(atLeast([4, 14, 336], '4.18')).toBe(false);
  expect(atLeast([4, 19, 0], '4.19')).toBe(true);
  expect(atLeast([5, 10, 0], '4.19')).toBe(true);
  expect(() => parseRelease('vmlinuz')).toThrow();
});

test('bzImageRelease reads the release from the setup header', () => {
  const buf = Buffer.alloc(0x1000);
  buf.write('HdrS', 0x202, 'latin1');
  buf.writeUInt16LE(0x400, 0x20e);
  buf.write('4.14.336 (builder@host) #1 SMP\0', 0x600, 'latin1');
  expect(bzImageRelease(buf)).toBe('4.14.336');
  expect(() => bzImageRelease(Buffer.alloc(0x1000))).toThrow(/not an x86 bzImage/);
});

test('modules load in dependency order; built-in and missing names are told apart', () => {
  const idx = parseModulesDep(
    [
      'kernel/drivers/virtio/virtio.ko:',
      'kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko',
      'kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko',
      'kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko',
      'kernel/net/core/failover.ko:',
      'kernel/net/sched/sch-ingress.ko:',
    ].join('\n'),
    'kernel/net/sched/cls_bpf.ko\n',
  );
  const { order, missing } = loadOrder(idx, ['virtio_pci', 'virtio_net', 'sch_ingress', 'cls_bpf', 'act_nothing']);
  expect(order).toEqual([
    'kernel/drivers/virtio/virtio.ko',
    'kernel/drivers/virtio/virtio_ring.ko',
    'kernel/drivers/virtio/virtio_pci.ko',
    'kernel/net/core/failover.ko',
    'kernel/drivers/net/virtio_net.ko',
    'kernel/net/sched/sch-ingress.ko',
  ]);
  expect(missing).toEqual(['act_nothing']);
});

test('a catalog whose default is missing is refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cat-'));
  await writeFile(join(dir, 'c.json'), JSON.stringify({ default: 'x', kernels: {} }));
  expect(() => loadCatalog(join(dir, 'c.json'))).toThrow(/default kernel "x"/);
});

test('a Debian kernel resolves to exactly the package and version kernels/lock.json pins', async () => {
  const { readLock } = await import('../../harness/kernels/pins.js');
  const { getKernel } = await import('../../harness/kernels/catalog.js');
  const pin = readLock()['6.1'];
  expect(pin).toBeDefined();
  const k = await getKernel('6.1');
  expect(k.pinned).toBe(`${pin.package} ${pin.version}`);
  expect(k.release).toBe(pin.package.replace(/^linux-image-/, ''));
}, hostMs(300_000));

test('pins are written sorted and read back', async () => {
  const { readLock, writePin } = await import('../../harness/kernels/pins.js');
  const dir = await mkdtemp(join(tmpdir(), 'lock-'));
  const path = join(dir, 'lock.json');
  expect(readLock(path)).toEqual({});
  const pin = { suite: 'bookworm', from: 'linux-image-cloud-amd64', package: 'linux-image-6.1.0-1-cloud-amd64', version: '6.1.1-1', sha256: 'ab' };
  writePin('6.1', pin, path);
  writePin('5.10', { ...pin, suite: 'bullseye' }, path);
  expect(Object.keys(readLock(path))).toEqual(['5.10', '6.1']);
  expect(readLock(path)['6.1']).toEqual(pin);
});
