import { describe, expect, test } from 'vitest';
import { formatCommand, qemuArgs, timeouts } from '../../harness/guest/qemu.js';
import { withSettings } from '../../harness/base/config.js';

const base = { bzImage: '/k/bzImage', initramfs: '/i/initramfs.cpio', memoryMiB: 512, cpus: 2, sshPort: 40022 };

describe('qemuArgs', () => {
  test('a dead guest ends the run: panic=-1 on the kernel command line and -no-reboot', () => {
    const args = qemuArgs({ ...base, accel: 'tcg' });
    expect(args).toContain('-no-reboot');
    const append = args[args.indexOf('-append') + 1];
    expect(append.split(' ')).toContain('panic=-1');
    expect(append.split(' ')).toContain('console=ttyS0');
  });

  test('SSH is forwarded on 127.0.0.1 only, and the guest network is restricted', () => {
    const args = qemuArgs({ ...base, accel: 'tcg' });
    const netdev = args[args.indexOf('-netdev') + 1];
    expect(netdev).toContain('hostfwd=tcp:127.0.0.1:40022-:22');
    expect(netdev).toContain('restrict=on');
  });

  test('the accelerator decides -accel and -cpu', () => {
    const tcg = qemuArgs({ ...base, accel: 'tcg' });
    const kvm = qemuArgs({ ...base, accel: 'kvm' });
    expect(tcg.slice(tcg.indexOf('-accel'), tcg.indexOf('-accel') + 4)).toEqual(['-accel', 'tcg', '-cpu', 'max']);
    expect(kvm.slice(kvm.indexOf('-accel'), kvm.indexOf('-accel') + 4)).toEqual(['-accel', 'kvm', '-cpu', 'host']);
  });

  test('is pure: it reads only its config (not the environment) and does not change it', () => {
    const config = Object.freeze({ ...base, accel: 'tcg' as const, append: 'quiet' });
    const before = qemuArgs(config);
    withSettings({ append: 'loglevel=0', accel: 'kvm', kernel: '5.10' }, () => expect(qemuArgs(config)).toEqual(before));
    expect(before[before.indexOf('-append') + 1].split(' ')).toContain('quiet');
  });

  test('entropy: the seed goes on the kernel command line, and virtio-rng is there only when asked for', () => {
    const args = qemuArgs({ ...base, accel: 'tcg', seed: 'ab'.repeat(32) });
    expect(args[args.indexOf('-append') + 1].split(' ')).toContain(`bpf_harness.seed=${'ab'.repeat(32)}`);
    expect(args.join(' ')).not.toMatch(/virtio-rng/);
    const rng = qemuArgs({ ...base, accel: 'tcg', rng: true });
    expect(rng[rng.indexOf('-device', rng.indexOf('-object')) + 1]).toBe('virtio-rng-pci,rng=rng0');
    const bare = qemuArgs({ ...base, accel: 'tcg' });
    expect(bare.join(' ')).not.toMatch(/virtio-rng|bpf_harness\.seed/);
  });

  test('no network device without an SSH port', () => {
    const args = qemuArgs({ ...base, sshPort: undefined, accel: 'tcg' });
    expect(args).toContain('none');
    expect(args).not.toContain('-netdev');
  });
});

test('timeouts scale with the accelerator', () => {
  expect(timeouts('tcg').bootMs).toBeGreaterThan(timeouts('kvm').bootMs);
  expect(timeouts('tcg').commandMs).toBeGreaterThan(timeouts('kvm').commandMs);
});

test('timeouts are whole milliseconds under a fractional factor (the agent takes integers only)', () => {
  withSettings({ timeoutScale: '2.137' }, () => {
    for (const accel of ['tcg', 'kvm'] as const) {
      const t = timeouts(accel);
      for (const [name, ms] of Object.entries(t)) expect(Number.isInteger(ms), `${accel} ${name} = ${ms}`).toBe(true);
      expect(t.commandMs).toBe(Math.round(30_000 * (accel === 'kvm' ? 1 : 4) * 2.137));
    }
  });
});

test('formatCommand quotes what the shell would split', () => {
  expect(formatCommand('qemu', ['-append', 'console=ttyS0 panic=-1', '-m', '512'])).toBe("qemu -append 'console=ttyS0 panic=-1' -m 512");
});
