// What reaches a guest's shell is quoted or refused: names a test passes in cannot run commands.
import { readFile } from 'node:fs/promises';
import { expect, test } from 'vitest';
import { attach } from '../../harness/agent/attach.js';
import { Cgroup } from '../../harness/agent/cgroup.js';
import { linkStats } from '../../harness/agent/traffic.js';
import { Vm } from '../../harness/guest/vm.js';
import { defaultKernel } from '../helpers/kernel.js';
import { hostMs, withTimeoutScale } from '../helpers/timeouts.js';

test('a cgroup name, a namespace or an interface name cannot inject shell commands into the guest', async () => {
  const vm = await Vm.start({ kernel: await defaultKernel(), label: 'quoting' });
  try {
    await expect(Cgroup.create(vm.ssh, 'x; touch /tmp/INJECTED')).rejects.toThrow(/cgroup name .*letters, digits/);
    await expect(linkStats(vm.ssh, 'lo; touch /tmp/INJECTED2')).rejects.toThrow();
    await expect(linkStats(vm.ssh, 'lo', 'ns$(touch /tmp/INJECTED3)')).rejects.toThrow();
    const agentless = { agent: undefined as never, commands: vm.ssh };
    await expect(
      attach(agentless, { type: 'lwt_xmit', object: '/x.o', section: 's', prefix: '10.0.0.1/32; touch /tmp/INJECTED4', dev: 'lo' }),
    ).rejects.toThrow();
    expect((await vm.ssh.exec('ls /tmp')).split('\n').filter((f) => f.startsWith('INJECTED'))).toEqual([]);
    // Quoting keeps ordinary names working: the counters are the kernel's (lo is quiet here).
    const sys = Number(await vm.ssh.exec('cat /sys/class/net/lo/statistics/rx_packets'));
    expect((await linkStats(vm.ssh, 'lo')).rxPackets).toBe(sys);
  } finally {
    await vm.stop();
  }
}, hostMs(240_000));

test('a guest that stops responding fails its command with that reason, not a bare ssh2 error', async () => {
  // Keepalives unanswered for a tenth of their bound (3 s instead of 30 on the reference machines), so that the test is quick.
  const vm = await withTimeoutScale(0.1, async () => Vm.start({ kernel: await defaultKernel(), label: 'stopped' }));
  try {
    expect((await vm.ssh.exec('echo up')).trim()).toBe('up');
    // QEMU is under setpriv: stop the emulator itself, as a hung host process would be.
    const qemu = Number((await readFile(`/proc/${vm.pid}/task/${vm.pid}/children`, 'utf8').catch(() => '')).trim().split(/\s+/)[0]) || vm.pid!;
    process.kill(qemu, 'SIGSTOP');
    const t = Date.now();
    await expect(vm.ssh.exec('echo never')).rejects.toThrow(/the guest stopped responding \(no answer to SSH keepalives for [\d.]+ s\); command: echo never/);
    expect(Date.now() - t).toBeLessThan(hostMs(20_000));
    process.kill(qemu, 'SIGCONT');
  } finally {
    vm.kill();
    await vm.stop();
  }
}, hostMs(240_000));
