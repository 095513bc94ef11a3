/*
 * struct_ops (5.6): a TCP congestion control written in BPF, "bh_cc" (Reno-like: halve on loss,
 * one more segment per ACK while cwnd-limited), compiled CO-RE against the guest's vmlinux.h.
 * Registering the struct_ops map makes it a congestion control the kernel offers; a connection
 * chooses it with TCP_CONGESTION. Each callback is counted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "counts.h"

char LICENSE[] SEC("license") = "GPL";

/* vmlinux.h has every kernel enumerator: the slots carry a prefix */
enum { BH_INIT, BH_SSTHRESH, BH_CONG_AVOID, BH_UNDO_CWND, BH_RELEASE, BH_NR };

COUNTS_MAP(bh_calls, BH_NR);

/* The kernel hands tcp_congestion_ops callbacks a struct sock that is a tcp_sock. */
static __always_inline struct tcp_sock *bh_tcp_sk(struct sock *sk)
{
	return (struct tcp_sock *)sk;
}

SEC("struct_ops/bh_init")
void BPF_PROG(bh_init, struct sock *sk)
{
	count_one(&bh_calls, BH_INIT);
}

SEC("struct_ops/bh_ssthresh")
__u32 BPF_PROG(bh_ssthresh, struct sock *sk)
{
	__u32 half = bh_tcp_sk(sk)->snd_cwnd >> 1;

	count_one(&bh_calls, BH_SSTHRESH);
	return half < 2 ? 2 : half;
}

SEC("struct_ops/bh_cong_avoid")
void BPF_PROG(bh_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = bh_tcp_sk(sk);

	count_one(&bh_calls, BH_CONG_AVOID);
	if (tp->snd_cwnd < tp->snd_cwnd_clamp)
		tp->snd_cwnd = tp->snd_cwnd + 1;
}

SEC("struct_ops/bh_undo_cwnd")
__u32 BPF_PROG(bh_undo_cwnd, struct sock *sk)
{
	count_one(&bh_calls, BH_UNDO_CWND);
	return bh_tcp_sk(sk)->snd_cwnd;
}

SEC("struct_ops/bh_release")
void BPF_PROG(bh_release, struct sock *sk)
{
	count_one(&bh_calls, BH_RELEASE);
}

SEC(".struct_ops")
struct tcp_congestion_ops bh_cc = {
	.init = (void *)bh_init,
	.ssthresh = (void *)bh_ssthresh,
	.cong_avoid = (void *)bh_cong_avoid,
	.undo_cwnd = (void *)bh_undo_cwnd,
	.release = (void *)bh_release,
	.name = "bh_cc",
};
