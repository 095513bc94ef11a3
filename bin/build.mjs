// The compiled harness: dist/, built from harness/ by tsconfig.build.json (npm run build). In a
// checkout (TypeScript installed beside it), a harness source or tsconfig newer than the last build
// compiles it again before the command runs, one process at a time; an installed package uses the
// dist/ it came with. Plain JavaScript: it runs before there is anything compiled.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
/** Written by every build that succeeded; the build is as new as its time. */
const STAMP = join(DIST, '.built');
const LOCK = join(ROOT, '.dist-build.lock');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

function* sources(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

/** The first source newer than the last build (or the reason there is none), else undefined. */
export function staleBecause() {
  if (!existsSync(join(ROOT, 'harness'))) return undefined;
  if (!existsSync(STAMP) || !existsSync(join(DIST, 'cli', 'main.js'))) return 'there is no build yet';
  const built = statSync(STAMP).mtimeMs;
  for (const p of [join(ROOT, 'tsconfig.json'), join(ROOT, 'tsconfig.build.json'), ...sources(join(ROOT, 'harness'))]) {
    if (statSync(p).mtimeMs > built) return `${relative(ROOT, p)} changed`;
    // A source moved or added keeps its time: it is new to the build when its output is missing.
    if (p.endsWith('.ts') && !existsSync(outputOf(p))) return `${relative(ROOT, p)} is new`;
  }
  const gone = orphans()[0];
  if (gone) return `the source of ${relative(ROOT, gone)} is gone`;
  return undefined;
}

/** dist/X.js of harness/X.ts. */
const outputOf = (source) => join(DIST, relative(join(ROOT, 'harness'), source)).replace(/\.ts$/, '.js');

/** Outputs in dist/ whose source in harness/ is gone (moved or removed): tsc leaves them. */
function orphans() {
  if (!existsSync(DIST)) return [];
  const out = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const m = /^(.*)\.(js|d\.ts|js\.map|d\.ts\.map)$/.exec(relative(DIST, p));
        if (m && !existsSync(join(ROOT, 'harness', `${m[1]}.ts`))) out.push(p);
      }
    }
  };
  walk(DIST);
  return out;
}

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};

/** Holds the build lock (a directory naming its owner's pid) while f runs; a dead owner's lock is taken over. */
function withLock(f) {
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      let owner = 0;
      try {
        owner = Number(readFileSync(join(LOCK, 'pid'), 'utf8'));
      } catch {}
      // No pid yet: its owner is between mkdir and write; a pid that is gone left the lock behind.
      if (owner && !alive(owner)) rmSync(LOCK, { recursive: true, force: true });
      else sleep(100);
    }
  }
  try {
    return f();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** Brings dist/ up to date with harness/ when it can (a checkout with TypeScript); throws when there is no usable build. */
export function ensureBuilt() {
  if (!staleBecause()) return;
  if (!existsSync(TSC)) {
    if (existsSync(join(DIST, 'cli', 'main.js'))) return;
    throw new Error(`there is no compiled harness in ${DIST}, and no TypeScript to build it with (npm install, then npm run build)`);
  }
  withLock(() => {
    const why = staleBecause();
    if (!why) return;
    process.stderr.write(`bpf-harness: compiling harness/ to dist/ (${why})\n`);
    // The build is as new as the sources it read: one edited while tsc runs is newer than it.
    const started = new Date();
    const r = spawnSync(process.execPath, [TSC, '-p', join(ROOT, 'tsconfig.build.json')], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) {
      rmSync(STAMP, { force: true });
      throw new Error(`compiling harness/ failed (exit ${r.status ?? r.signal}): see the TypeScript errors above`);
    }
    // So that nothing imports a module that is no longer there, and the package does not carry it.
    for (const p of orphans()) rmSync(p);
    mkdirSync(DIST, { recursive: true });
    writeFileSync(STAMP, `${started.toISOString()}\n`);
    utimesSync(STAMP, started, started);
  });
}

// `node bin/build.mjs`: npm run build.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    ensureBuilt();
  } catch (e) {
    console.error(`bpf-harness: ${e.message}`);
    process.exit(1);
  }
}
