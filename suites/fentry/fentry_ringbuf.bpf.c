/*
 * fexit on udp_sendmsg reporting each call of the target socket through a BPF ring buffer (5.8):
 * one record per call with the length asked for and the return value, in the order they
 * happened (a ring buffer is one queue for every CPU). CO-RE against the guest's vmlinux.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "udp_target.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} bh_events SEC(".maps");

struct bh_event {
	__u64 len;
	__s32 ret;
	__u32 port;
};

SEC("fexit/udp_sendmsg")
int BPF_PROG(report_exit, struct sock *sk, struct msghdr *msg, size_t len, int ret)
{
	struct bh_event *e;

	if (!ours(sk))
		return 0;
	e = bpf_ringbuf_reserve(&bh_events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->len = len;
	e->ret = ret;
	e->port = sk->__sk_common.skc_num;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
