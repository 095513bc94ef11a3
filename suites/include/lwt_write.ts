// The tests of lwt_write.h's programs, shared by the lwt_in and lwt_out suites (Issue 11): lwt_in
// and lwt_out may read the packet but not write it (dst_input() and dst_output() cannot take a
// changed packet): the verifier refuses a direct store into the packet (EACCES, "cannot write into
// packet") and bpf_skb_store_bytes, a helper the type is not given (EINVAL). The same writes in an
// lwt_xmit program load: the refusal is the hook's, not the code's. Each suite compiles its own
// objects, lwt_<hook>_write_direct.bpf.c, lwt_<hook>_write_helper.bpf.c and
// lwt_<hook>_writes_as_xmit.bpf.c, and calls describeRefusedWrites(guest, hook) once.
import { describe, expect, test } from 'vitest';
import { expectVerifierRejects, type Guest } from '../../harness/index.js';

const EINVAL = 22;

/** The `lwt_<hook> refuses packet writes at load time` block of a suite file. */
export function describeRefusedWrites(guest: Guest, hook: 'in' | 'out'): void {
  describe(`lwt_${hook} refuses packet writes at load time`, () => {
    test('a direct store into the packet is refused by the verifier with EACCES', async () => {
      await expectVerifierRejects(guest.load(`lwt_${hook}_write_direct.bpf.c`), `${hook}_write_direct`, /cannot write into packet/);
    });

    test(`bpf_skb_store_bytes is not offered to lwt_${hook}: EINVAL, naming the helper`, async () => {
      // 4.14-5.x: "unknown func"; later kernels: "program of this type cannot use helper".
      await expectVerifierRejects(guest.load(`lwt_${hook}_write_helper.bpf.c`), `${hook}_write_helper`, /(unknown func|program of this type cannot use helper) bpf_skb_store_bytes#9/, EINVAL);
    });

    test('the same writes in lwt_xmit programs load', async () => {
      const obj = await guest.load(`lwt_${hook}_writes_as_xmit.bpf.c`);
      expect(obj.programs.map((p) => [p.name, p.type])).toEqual([
        ['xmit_write_direct', 'lwt_xmit'],
        ['xmit_write_helper', 'lwt_xmit'],
      ]);
      expect(obj.programs.every((p) => (p.id ?? 0) > 0)).toBe(true);
    });
  });
}
