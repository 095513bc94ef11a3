/*
 * A kprobe and a kretprobe on one kernel function (the test attaches them to getpid's entry
 * symbol), counting only calls made by the process whose tgid the test wrote into `config`.
 * The kretprobe also checks the function's return value against that tgid.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "counts.h"
#include "target.h"

enum {
	ENTRIES = 0,      /* kprobe hits from the tgid */
	RETURNS = 1,      /* kretprobe hits from the tgid */
	RET_IS_TGID = 2,  /* ... whose return value equalled the tgid */
	LAST_RET = 3,     /* the last return value seen */
	NR_COUNTS = 4,
};

COUNTS_MAP(counts, NR_COUNTS);

SEC("kprobe")
int count_entry(struct pt_regs *ctx)
{
	if (from_target())
		count_one(&counts, ENTRIES);
	return 0;
}

SEC("kretprobe")
int count_return(struct pt_regs *ctx)
{
	__u32 zero = 0, last = LAST_RET;
	__u32 *tgid;
	__u64 *v;
	long rc;

	tgid = bpf_map_lookup_elem(&config, &zero);
	if (!tgid || !*tgid || (__u32)(bpf_get_current_pid_tgid() >> 32) != *tgid)
		return 0;
	rc = PT_REGS_RC(ctx);
	count_one(&counts, RETURNS);
	if (rc == (long)*tgid)
		count_one(&counts, RET_IS_TGID);
	v = bpf_map_lookup_elem(&counts, &last);
	if (v)
		*v = (__u64)rc;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
