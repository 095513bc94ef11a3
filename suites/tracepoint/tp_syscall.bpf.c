/*
 * syscalls/sys_enter_getppid: counts the calls made by the tgid in `config` and records the
 * __syscall_nr field of the tracepoint's record.
 * Record layout from events/syscalls/sys_enter_getppid/format (the test checks the offsets).
 * The common_* fields (first 8 bytes) cannot be read by BPF programs: the verifier refuses them.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "target.h"

struct sys_enter_noargs {
	__u16 common_type;          /* offset 0 */
	__u8 common_flags;          /* offset 2 */
	__u8 common_preempt_count;  /* offset 3 */
	__s32 common_pid;           /* offset 4 */
	__s32 __syscall_nr;         /* offset 8 */
};

/* [0] calls from the tgid, [1] last __syscall_nr seen */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(struct sys_enter_noargs *ctx)
{
	__u32 zero = 0, one = 1;
	__u64 *v;

	if (!from_target())
		return 0;
	v = bpf_map_lookup_elem(&counts, &zero);
	if (v)
		__sync_fetch_and_add(v, 1);
	v = bpf_map_lookup_elem(&counts, &one);
	if (v)
		*v = (__u64)ctx->__syscall_nr;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
