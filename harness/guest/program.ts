// A program of the user's run in a guest as root: the program and the paths it asks for are
// copied in first, under their own absolute paths, and the shared libraries a dynamically linked
// program needs (resolved as the image resolves ip's) into a folder of their own, so that nothing
// is assumed installed in the guest beyond the image. Its output is streamed as it comes; its exit code is returned.
import { existsSync, realpathSync, statSync } from 'node:fs';
import { copyFile, lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { resultsRoot } from '../base/config.js';
import { shq } from '../base/quote.js';
import { REPO_ROOT } from '../base/paths.js';
import { libraryClosure } from './image.js';
import type { Vm } from './vm.js';

/** Where a program's shared libraries go in the guest. */
export const PROGRAM_LIBS = '/run/bpf-harness/lib';

/** Folders of the working directory that are not copied: history, dependencies and build output. */
export const CWD_SKIPPED = ['.git', 'node_modules', 'target'];
/** The most the working directory's files may hold, to be copied in. */
export const CWD_MAX_BYTES = 256 * 2 ** 20;

/**
 * The files (and symlinks) under `dir` that go into the guest with it (paths relative to it),
 * without the folders of CWD_SKIPPED at any depth and the folders `leaveOut` (absolute paths: the
 * harness's own results); an error past CWD_MAX_BYTES, naming the way out.
 */
export async function cwdFiles(dir: string, leaveOut: string[] = []): Promise<string[]> {
  const out: string[] = [];
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!CWD_SKIPPED.includes(e.name) && !leaveOut.includes(join(dir, r))) await walk(r);
      } else if (e.isFile() || e.isSymbolicLink()) {
        bytes += (await lstat(join(dir, r))).size;
        if (bytes > CWD_MAX_BYTES) {
          throw new Error(`the working directory ${dir} holds more than ${CWD_MAX_BYTES / 2 ** 20} MiB to copy into the guest (${CWD_SKIPPED.join(', ')} left out): run from a smaller directory, or name one with --cwd`);
        }
        out.push(r);
      }
    }
  };
  await walk('');
  return out.sort();
}

export interface ProgramOptions {
  /** More files or directories the program needs, copied to the same paths in the guest. */
  copy?: string[];
  /** The directory the program runs in (copied in, with what it holds: see cwdFiles); default: the host's cwd. */
  cwd?: string;
  /** Seconds before the program is killed (its run fails). */
  timeoutS?: number;
  /** Each chunk of its stdout and stderr as it arrives. */
  onOutput?(chunk: string, stream: 'stdout' | 'stderr'): void;
}

export interface ProgramResult {
  code: number;
  output: string;
  timedOut: boolean;
}

/** Copies the program, its libraries and opts.copy into the guest, and runs it with args. */
export async function runProgram(vm: Vm, program: string, args: string[], o: ProgramOptions = {}): Promise<ProgramResult> {
  const path = resolve(program);
  if (!existsSync(path) || !statSync(path).isFile()) throw new Error(`${program}: no such program`);
  const cwd = resolve(o.cwd ?? process.cwd());
  const libs = await libraryClosure(path);
  const asked = [path, ...(o.copy ?? []).map((p) => resolve(p))];
  for (const f of asked) if (!existsSync(f)) throw new Error(`--copy ${f}: no such file or directory`);
  // The program and its paths land where they are on the host (one tar stream from /).
  await vm.ssh.put('/', asked.map((f) => relative('/', f)), '/');
  // Its libraries go to a folder of their own, named as the program asks for them
  // (libbpf.so.1, not the file the link points at), so that none of the guest's own, in use, is
  // overwritten; the guest's loader finds them through LD_LIBRARY_PATH.
  if (libs.length) {
    const stage = await mkdtemp(join(tmpdir(), 'bpf-harness-libs-'));
    try {
      for (const l of libs) await copyFile(realpathSync(l), join(stage, basename(l)));
      await vm.ssh.put(stage, libs.map((l) => basename(l)), PROGRAM_LIBS);
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  }
  // The working directory comes along (a Go test's testdata/, a script's inputs), at its own path.
  // The harness's own results stay behind: this run's, and the checkout's default folder, which
  // other runs may be writing while this one copies.
  const here = await cwdFiles(cwd, [resolve(resultsRoot()), join(REPO_ROOT, 'results')]);
  if (here.length) await vm.ssh.put(cwd, here, cwd);
  else await vm.ssh.exec(`mkdir -p ${shq(cwd)}`);
  const env = libs.length ? `LD_LIBRARY_PATH=${PROGRAM_LIBS} ` : '';
  const command = `cd ${shq(cwd)} && ${env}exec ${[path, ...args].map(shq).join(' ')}`;
  const timeoutMs = (o.timeoutS ?? 600) * 1000;
  let output = '';
  return new Promise((done, fail) => {
    let code = -1;
    let timedOut = false;
    vm.ssh
      .channel(command, (ch) => {
        const timer = setTimeout(() => {
          timedOut = true;
          ch.signal('KILL');
          ch.close();
        }, timeoutMs);
        ch.on('data', (d: Buffer) => {
          output += d.toString();
          o.onOutput?.(d.toString(), 'stdout');
        });
        ch.stderr.on('data', (d: Buffer) => {
          output += d.toString();
          o.onOutput?.(d.toString(), 'stderr');
        });
        ch.on('exit', (c: number | null, signal?: string) => {
          code = c ?? (signal ? 128 : -1);
        });
        ch.on('close', () => {
          clearTimeout(timer);
          done({ code, output, timedOut });
        });
        ch.end();
      })
      .catch(fail);
  });
}
