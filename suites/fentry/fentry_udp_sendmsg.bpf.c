/*
 * fentry and fexit (5.5) on udp_sendmsg(struct sock *sk, struct msghdr *msg, size_t len),
 * compiled CO-RE against the guest kernel's vmlinux.h. Arguments arrive typed through BTF: the
 * program dereferences sk directly for its local port (sk->__sk_common.skc_num), and fexit gets
 * the arguments and the return value (bytes sent, or a negative errno). Only calls from the tgid,
 * on sockets bound to the port, in `bh_target` are counted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "counts.h"
#include "udp_target.h"

/* vmlinux.h has every kernel enumerator: the slots carry a prefix */
enum {
	BH_ENTRY_CALLS,     /* fentry hits */
	BH_ENTRY_LEN_SUM,   /* sum of len seen on entry */
	BH_EXIT_CALLS,      /* fexit hits */
	BH_EXIT_SENT_SUM,   /* sum of non-negative return values */
	BH_EXIT_RET_IS_LEN, /* exits whose return value equalled len */
	BH_EXIT_ERRORS,     /* exits with a negative return value */
	BH_EXIT_LAST_ERROR, /* the last negative return value */
	BH_NR_STATS,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BH_NR_STATS);
	__type(key, __u32);
	__type(value, __s64);
} bh_stats SEC(".maps");

SEC("fentry/udp_sendmsg")
int BPF_PROG(on_entry, struct sock *sk, struct msghdr *msg, size_t len)
{
	if (!ours(sk))
		return 0;
	count_one(&bh_stats, BH_ENTRY_CALLS);
	count_add(&bh_stats, BH_ENTRY_LEN_SUM, len);
	return 0;
}

SEC("fexit/udp_sendmsg")
int BPF_PROG(on_exit, struct sock *sk, struct msghdr *msg, size_t len, int ret)
{
	__u32 last = BH_EXIT_LAST_ERROR;
	__s64 *p;

	if (!ours(sk))
		return 0;
	count_one(&bh_stats, BH_EXIT_CALLS);
	if (ret >= 0) {
		count_add(&bh_stats, BH_EXIT_SENT_SUM, ret);
		if (ret == len)
			count_one(&bh_stats, BH_EXIT_RET_IS_LEN);
		return 0;
	}
	count_one(&bh_stats, BH_EXIT_ERRORS);
	p = bpf_map_lookup_elem(&bh_stats, &last);
	if (p)
		*p = ret;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
