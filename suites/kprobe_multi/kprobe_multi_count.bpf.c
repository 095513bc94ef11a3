/*
 * kprobe_multi (5.18): one program on many kernel functions through one link. The agent gives
 * the i-th function BPF cookie i + 1; the programs count hits per cookie (and, on return, sum the
 * return values) for the tgid in `config` only.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "target.h"

struct stat {
	__u64 hits;
	__s64 ret_sum;
};

MAP_OF(entries, BPF_MAP_TYPE_ARRAY, __u32, struct stat, 65, );

MAP_OF(returns, BPF_MAP_TYPE_ARRAY, __u32, struct stat, 65, );

/* The stat of the function the probe fired on (its attach cookie is its slot), for the target's calls only. */
static __always_inline struct stat *stat_of(void *map, struct pt_regs *ctx)
{
	__u32 cookie = (__u32)bpf_get_attach_cookie(ctx);

	return from_target() ? bpf_map_lookup_elem(map, &cookie) : NULL;
}

SEC("kprobe.multi")
int count_entry(struct pt_regs *ctx)
{
	struct stat *s = stat_of(&entries, ctx);

	if (s)
		__sync_fetch_and_add(&s->hits, 1);
	return 0;
}

SEC("kretprobe.multi")
int count_return(struct pt_regs *ctx)
{
	struct stat *s = stat_of(&returns, ctx);

	if (s) {
		__sync_fetch_and_add(&s->hits, 1);
		__sync_fetch_and_add(&s->ret_sum, (long)PT_REGS_RC(ctx));
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
