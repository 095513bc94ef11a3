// A veth pair made by the agent carries packets the moment VethPair.create returns: the sending
// end's qdisc is activated by the kernel's link watch work some time after the pair comes up, and
// a packet sent before that is dropped (this made the first datagrams of a test vanish once the
// pair no longer took five ip processes to build).
import { expect, test } from 'vitest';
import { Agent } from '../../harness/agent/agent.js';
import { VethPair } from '../../harness/agent/topology.js';
import { send } from '../../harness/agent/traffic.js';
import { Vm } from '../../harness/guest/vm.js';
import { defaultKernel } from '../helpers/kernel.js';
import { hostMs } from '../helpers/timeouts.js';

test('every new veth pair answers the first packets sent across it', async () => {
  const vm = await Vm.start({ kernel: await defaultKernel(), label: 'topology' });
  try {
    const agent = await Agent.start(vm.ssh, `${vm.logDir}/agent.log`, vm.timeouts.commandMs);
    const answered: number[] = [];
    for (let i = 0; i < 12; i++) {
      const net = await VethPair.create(agent);
      // No wait of any kind between the pair and the first packet.
      answered.push((await send(agent, { netns: net.a.netns, proto: 'icmp', dst: net.b.ip, count: 3, waitMs: 100 })).replies);
    }
    expect(answered, 'ICMP replies for 3 echo requests, one entry per new pair').toEqual(Array(12).fill(3));
    // The pair's shape, as the kernel reports it.
    const net = await VethPair.create(agent, { name: 'shape', subnet: 77 });
    const link = JSON.parse(await agent.exec(`ip -n ${net.a.netns} -j link show dev ${net.a.ifname}`))[0];
    expect(link).toMatchObject({ address: net.a.mac, operstate: 'UP', qdisc: 'noqueue' });
    const neigh = JSON.parse(await agent.exec(`ip -n ${net.b.netns} -j neigh show dev ${net.b.ifname}`));
    expect(neigh).toEqual([expect.objectContaining({ dst: net.a.ip, lladdr: net.a.mac, state: ['PERMANENT'] })]);
    // A third namespace behind B: end A of a new pair goes into B's existing namespace.
    const behind = await VethPair.create(agent, { aNetns: net.b.netns, subnet: 78 });
    expect(behind.a.netns).toBe(net.b.netns);
    const [near] = JSON.parse(await agent.exec(`ip -n ${net.b.netns} -j link show dev ${behind.a.ifname}`));
    expect(near.ifindex, 'the ifindex the agent reports is the one the kernel gave in B').toBe(behind.a.ifindex);
    expect((await send(agent, { netns: net.b.netns, proto: 'icmp', dst: behind.b.ip, count: 3 })).replies).toBe(3);
    await behind.destroy();
    expect((await agent.exec('ls /run/netns')).split('\n').filter(Boolean).sort(), 'destroy removes C, not B').toContain(net.b.netns);
    agent.close();
  } finally {
    await vm.stop();
  }
}, hostMs(240_000));
