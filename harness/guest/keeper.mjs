// The keeper of a guest that may outlive its run (--keep-on-fail). Plain JavaScript, so that it
// starts in milliseconds without a TypeScript loader.
//
//   node harness/guest/keeper.mjs COMMAND ARGS...   (COMMAND is `setpriv --pdeathsig SIGKILL -- qemu ...`)
//
// It runs the command (QEMU dies with the keeper, through pdeathsig) and relays its output to its
// own stdout and stderr, where the harness reads the serial console. Its stdin comes from the
// harness: when that closes (the harness ended or was killed) the keeper kills QEMU and exits, so
// nothing is left running. Only after the line `keep JSON` does it stay: then it appends the
// console to JSON.console, writes JSON to JSON.registry, and lives until QEMU exits, it gets
// SIGTERM (`npm run shell -- --stop ID`), or JSON.maxSeconds pass.
import { spawn } from 'node:child_process';
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';

const child = spawn(process.argv[2], process.argv.slice(3), { stdio: ['ignore', 'pipe', 'pipe'] });
let kept = null;
const out = (stream, prefix) => (d) => {
  if (kept) {
    try {
      appendFileSync(kept.console, prefix ? `${prefix}${d}` : d);
    } catch {
      /* the log directory went away */
    }
  } else stream.write(d);
};
child.stdout.on('data', out(process.stdout, ''));
child.stderr.on('data', out(process.stderr, '[qemu] '));
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

const end = (code) => {
  try {
    child.kill('SIGKILL');
  } catch {
    /* gone */
  }
  if (kept) rmSync(kept.registry, { force: true });
  process.exit(code);
};
child.on('exit', (code) => {
  if (kept) rmSync(kept.registry, { force: true });
  process.exit(code ?? 1);
});
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => end(0));

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  input += d;
  let nl;
  while ((nl = input.indexOf('\n')) >= 0) {
    const line = input.slice(0, nl);
    input = input.slice(nl + 1);
    if (line.startsWith('keep ')) {
      kept = JSON.parse(line.slice(5));
      writeFileSync(kept.registry, JSON.stringify({ ...kept, keeperPid: process.pid, qemuPid: child.pid }, null, 1));
      setTimeout(() => end(0), kept.maxSeconds * 1000).unref();
      process.stdout.write('kept\n');
    }
  }
});
// The harness is gone: unless the guest is kept, it goes too.
process.stdin.on('end', () => {
  if (!kept) end(0);
});
process.stdin.on('error', () => {
  if (!kept) end(0);
});
