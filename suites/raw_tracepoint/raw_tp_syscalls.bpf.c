/*
 * Raw tracepoints (4.17) on sys_enter and sys_exit, attached by name with
 * BPF_RAW_TRACEPOINT_OPEN (no tracefs event, no perf event). The program gets the tracepoint's
 * raw arguments: sys_enter (struct pt_regs *regs, long id), sys_exit (struct pt_regs *regs,
 * long ret). Only the process whose tgid the test wrote into `config` is counted: calls per
 * system call number on entry and on exit, and on exit the sum and the last of the return
 * values, with the number read from the registers (regs->orig_ax) through bpf_probe_read.
 * No BTF: loads on any kernel with raw tracepoints.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include "counts.h"
#include "target.h"

struct exit_stats {
	__u64 calls;
	__s64 ret_sum;
	__s64 last_ret;
};

KEY_COUNTS_MAP(entries, __u32, 1024);

MAP_OF(exits, BPF_MAP_TYPE_HASH, __u32, struct exit_stats, 1024, );

SEC("raw_tracepoint/sys_enter")
int count_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 nr = (__u32)ctx->args[1];

	if (!from_target())
		return 0;
	count_key(&entries, &nr);
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int count_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__s64 ret = (__s64)ctx->args[1];
	unsigned long orig = 0;
	struct exit_stats *s, fresh = {};
	__u32 nr;

	if (!from_target())
		return 0;
	if (bpf_probe_read(&orig, sizeof(orig), &regs->orig_rax))
		return 0;
	nr = (__u32)orig;
	s = bpf_map_lookup_elem(&exits, &nr);
	if (!s) {
		bpf_map_update_elem(&exits, &nr, &fresh, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&exits, &nr);
		if (!s)
			return 0;
	}
	__sync_fetch_and_add(&s->calls, 1);
	__sync_fetch_and_add(&s->ret_sum, ret);
	s->last_ret = ret;
	return 0;
}

/*
 * Events to user space through a perf event array (bpf_perf_event_output from a raw tracepoint,
 * 4.17): one record per getppid or getuid entry of the target, with a sequence number from a
 * shared counter (records of different CPUs are read per CPU, so the test sorts by it).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} event_seq SEC(".maps");

struct event {
	__u64 seq;
	__u32 tgid;
	__u32 nr;
};

#define NR_GETPPID 110
#define NR_GETUID 102

SEC("raw_tracepoint/sys_enter")
int report_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	__u64 *seq;
	struct event e = {};

	if (!from_target())
		return 0;
	e.nr = (__u32)ctx->args[1];
	if (e.nr != NR_GETPPID && e.nr != NR_GETUID)
		return 0;
	seq = bpf_map_lookup_elem(&event_seq, &zero);
	if (!seq)
		return 0;
	/* Not an atomic fetch-and-add: its value-returning form needs 5.12; the agent's calls come
	 * one at a time. */
	e.seq = *seq;
	*seq = e.seq + 1;
	e.tgid = (__u32)(bpf_get_current_pid_tgid() >> 32);
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
