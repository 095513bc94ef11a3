// `kernels list|fetch|lock|build`: the catalog, and getting its kernels into the cache.
import { resolveDebian } from '../kernels/apt.js';
import { buildKernel } from '../kernels/build.js';
import { positiveInt } from '../base/config.js';
import { getKernel, loadCatalog, lookupKernel } from '../kernels/catalog.js';
import { readLock, writePin } from '../kernels/pins.js';
import type { Values } from './options.js';
import { say } from './suite.js';

export function kernelsList(): number {
  const catalog = loadCatalog();
  const lock = readLock();
  for (const [name, src] of Object.entries(catalog.kernels)) {
    const where =
      src.source === 'debian'
        ? `Debian ${src.suite}: ${src.package}`
        : src.source === 'debian-source'
          ? `built from Debian ${src.suite} ${src.package}`
          : src.source === 'tarball'
            ? `built from ${src.url.split('/').pop()}${src.sha256 ? '' : ' (needs --sha256)'}`
            : src.source === 'tree'
              ? `built from ${src.path}`
              : src.bzImage;
    const pin = lock[name];
    const pinned = pin ? ` -> ${pin.package} ${pin.version}` : src.source === 'debian' ? ' (not pinned: newest)' : '';
    console.log(`${name === catalog.default ? '*' : ' '} ${name.padEnd(6)} ${where}${pinned}${src.description ? `  ${src.description}` : ''}`);
  }
  return 0;
}

export async function kernelsFetch(name: string | undefined, modules: string | undefined): Promise<number> {
  const k = await getKernel(name, { onProgress: say, modules });
  console.log(`${k.name}: ${k.pinned} (${k.release}) at ${k.bzImage}`);
  return 0;
}

export async function kernelsLock(names: string[]): Promise<number> {
  const catalog = loadCatalog();
  for (const name of names.length ? names : Object.keys(catalog.kernels)) {
    const src = lookupKernel(name, catalog);
    if (src.source !== 'debian' && src.source !== 'debian-source') continue;
    const pin = await resolveDebian(name, { source: 'debian', suite: src.suite, package: src.package }, say);
    writePin(name, pin);
    console.log(`${name}: pinned to ${pin.package} ${pin.version}`);
  }
  return 0;
}

export async function kernelsBuild(target: string | undefined, values: Values): Promise<number> {
  if (!target) throw new Error('kernels build: name a catalog kernel, a source tree or tarball, or a tarball URL');
  const src = lookupKernel(target, loadCatalog());
  if (src.source !== 'tarball' && src.source !== 'debian-source' && src.source !== 'tree') {
    throw new Error(`kernels build: ${target} is a ${src.source} kernel, not kernel source (see \`npm run kernels -- list\`)`);
  }
  const t = Date.now();
  const configOnly = values['config-only'];
  const k = await buildKernel(target, src, { onProgress: say, sourcePath: values.source, sha256: values.sha256, jobs: values.jobs !== undefined ? positiveInt(values.jobs, '--jobs') : undefined, configOnly });
  if (configOnly) {
    console.log(`${k.name}: Linux ${k.release}: the config check passed (nothing built)`);
    return 0;
  }
  const took = ((Date.now() - t) / 1000).toFixed(1);
  console.log(`${k.name}: ${k.release} ${k.built ? `built in ${took} s` : `from the cache in ${took} s (built in ${k.buildSeconds} s)`}\n  ${k.pinned}\n  ${k.bzImage}`);
  return 0;
}
