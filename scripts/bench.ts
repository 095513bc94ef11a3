#!/usr/bin/env -S npx tsx
// Prints the figures the project tracks: boot-to-SSH time per kernel (median of a few boots) and
// the wall time of a suite per kernel. Usage: npm run bench -- [--kernels 6.1,5.10] [--suite xdp] [--boots 3]
import { parseArgs } from 'node:util';
import { $ } from 'zx';
import { getKernel } from '../harness/kernels.js';
import { Vm } from '../harness/vm.js';

const { values } = parseArgs({
  options: {
    kernels: { type: 'string', default: '6.1,5.10' },
    suite: { type: 'string', default: 'xdp' },
    boots: { type: 'string', default: '3' },
  },
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows: string[] = [];
for (const name of values.kernels!.split(',')) {
  const kernel = await getKernel(name);
  const boots: number[] = [];
  let accel = '';
  for (let i = 0; i < Number(values.boots); i++) {
    const vm = await Vm.start({ kernel, label: 'bench' });
    boots.push(vm.bootMs);
    accel = vm.accel;
    await vm.stop();
  }
  const t = Date.now();
  const suite = await $({ nothrow: true, quiet: true })`npx tsx harness/cli.ts suite ${values.suite!} --kernel ${name}`;
  const wall = (Date.now() - t) / 1000;
  const status = suite.exitCode === 0 ? 'pass' : `FAIL (exit ${suite.exitCode})`;
  rows.push(`${name.padEnd(6)} ${kernel.release.padEnd(24)} ${accel.padEnd(4)} boot-to-SSH median ${(median(boots) / 1000).toFixed(2)} s (${boots.map((b) => (b / 1000).toFixed(2)).join(', ')})  suite ${values.suite} ${wall.toFixed(1)} s ${status}`);
  console.log(rows.at(-1));
}
console.log('\nkernel release                  accel figures');
for (const r of rows) console.log(r);
