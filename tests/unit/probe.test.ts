// harness/suite/probe.ts: the verdicts, from facts and probe answers (no guest).
import { expect, test } from 'vitest';
import { type KernelFacts, parseFacts, verdict } from '../../harness/suite/probe.js';

const facts = (over: Partial<KernelFacts> = {}): KernelFacts => ({
  release: '6.1.0-50-cloud-amd64',
  version: [6, 1, 0],
  config: new Map([
    ['CONFIG_BPF_LSM', 'y'],
    ['CONFIG_DEBUG_INFO_BTF', 'y'],
    ['CONFIG_CGROUP_BPF', 'y'],
  ]),
  configFrom: 'test',
  btf: true,
  lsm: ['lockdown', 'capability', 'bpf'],
  cmdline: '',
  ...over,
});
const ok = { progType: true, progTypeErrno: 0 };
const no = { progType: false, progTypeErrno: 22 };

test('a kernel older than the feature that refuses it is too old; one that accepts it (a backport) runs', () => {
  const needs = { feature: 'recvmsg4', since: '5.2', progType: 'cgroup_sock_addr', attachType: 'cgroup_udp4_recvmsg' };
  const old = facts({ release: '4.19.78', version: [4, 19, 78] });
  expect(verdict(old, needs, { ...ok, attachType: false, attachTypeErrno: 22 })).toBe('kernel too old (needs 5.2): recvmsg4 (kernel 4.19.78)');
  expect(verdict(old, needs, { ...ok, attachType: true, attachTypeErrno: 0 })).toBeNull();
  // Without a probe, the version decides.
  expect(verdict(old, { feature: 'x', since: '5.2' })).toBe('kernel too old (needs 5.2): x (kernel 4.19.78)');
});

test('a new enough kernel whose config lacks the option says which; one whose config has it and still refuses runs (and fails)', () => {
  const needs = { feature: 'lsm', since: '5.7', progType: 'lsm', config: ['CONFIG_BPF_LSM'] };
  expect(verdict(facts({ config: new Map([['CONFIG_BPF_LSM', 'n']]) }), needs, no)).toBe('kernel config lacks CONFIG_BPF_LSM: lsm (kernel 6.1.0-50-cloud-amd64)');
  expect(verdict(facts(), needs, no)).toBeNull();
});

test('no BTF, and a missing LSM as a boot parameter with the list to give', () => {
  expect(verdict(facts({ btf: false }), { feature: 'fentry', since: '5.5', btf: true }, ok)).toBe('no BTF (/sys/kernel/btf/vmlinux is missing): fentry (kernel 6.1.0-50-cloud-amd64)');
  expect(verdict(facts({ btf: false, config: new Map() }), { feature: 'fentry', since: '5.5', btf: true }, ok)).toContain('kernel config lacks CONFIG_DEBUG_INFO_BTF');
  expect(verdict(facts({ lsm: ['lockdown', 'yama'] }), { feature: 'lsm', since: '5.7', lsm: 'bpf' }, ok)).toBe(
    'boot parameter missing (lsm=lockdown,yama,bpf): bpf is not an active LSM (active: lockdown,yama): lsm (kernel 6.1.0-50-cloud-amd64)',
  );
  expect(verdict(facts(), { feature: 'lsm', since: '5.7', lsm: 'bpf' }, ok)).toBeNull();
});

test('the guest\'s facts: /proc/config.gz wins over the host\'s config file', () => {
  const out = ['@release 5.10.0-32-cloud-amd64', '@cmdline console=ttyS0 lsm=bpf', '@btf yes', '@lsm capability,bpf', '@config /proc/config.gz', 'CONFIG_X=y', '# CONFIG_Y is not set'].join('\n');
  const f = parseFacts(out, { path: '/host/config', text: 'CONFIG_Y=y' });
  expect(f).toMatchObject({ release: '5.10.0-32-cloud-amd64', version: [5, 10, 0], btf: true, lsm: ['capability', 'bpf'], configFrom: '/proc/config.gz (guest)' });
  expect(f.config?.get('CONFIG_Y')).toBe('n');
  const g = parseFacts('@release 6.1.0\n@btf no\n@lsm-none\n', { path: '/host/config', text: 'CONFIG_Y=y' });
  expect(g).toMatchObject({ btf: false, lsm: null, configFrom: '/host/config' });
  expect(g.config?.get('CONFIG_Y')).toBe('y');
});
