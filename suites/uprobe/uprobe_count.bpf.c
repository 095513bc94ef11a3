/*
 * A uprobe and a uretprobe on bh_target(int x) of the suite's target program: calls and the sum
 * of the argument, returns and the sum of the return value, read from the registers.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "counts.h"

enum { CALLS = 0, ARG_SUM = 1, RETURNS = 2, RET_SUM = 3, NR_COUNTS = 4 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_COUNTS);
	__type(key, __u32);
	__type(value, __s64);
} counts SEC(".maps");

SEC("uprobe")
int on_call(struct pt_regs *ctx)
{
	count_one(&counts, CALLS);
	count_add(&counts, ARG_SUM, (int)PT_REGS_PARM1(ctx));
	return 0;
}

SEC("uretprobe")
int on_return(struct pt_regs *ctx)
{
	count_one(&counts, RETURNS);
	count_add(&counts, RET_SUM, (int)PT_REGS_RC(ctx));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
