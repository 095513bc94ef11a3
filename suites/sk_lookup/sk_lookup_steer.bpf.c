/*
 * sk_lookup (5.9), attached to a network namespace: the kernel asks the program which socket a
 * new connection (TCP SYN) or an unconnected datagram (UDP) goes to, before it looks at who is
 * bound to the address. Ports 8000-8009 go to the socket in `targets` (key 0: a TCP listener,
 * key 1: a UDP socket), wherever it is bound; UDP to port 8010 is dropped; everything else takes
 * the usual path. Each decision on ports 8000-8010 is counted per protocol, port and outcome.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include "counts.h"

#define STEER_FIRST 8000
#define STEER_LAST 8009
#define DROP_PORT 8010

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} targets SEC(".maps");

enum outcome { PASSED = 0, ASSIGNED = 1, DROPPED = 2, NO_TARGET = 3 };

struct decision {
	__u32 protocol;
	__u32 port;
	__u32 outcome;
};

KEY_COUNTS_MAP(decisions, struct decision, 64);

static __always_inline void count(__u32 protocol, __u32 port, __u32 outcome)
{
	struct decision d = { .protocol = protocol, .port = port, .outcome = outcome };

	count_key(&decisions, &d);
}

SEC("sk_lookup")
int steer(struct bpf_sk_lookup *ctx)
{
	__u32 port = ctx->local_port;   /* host byte order */
	__u32 key = ctx->protocol == IPPROTO_TCP ? 0 : 1;
	struct bpf_sock *sk;
	long err;

	if (port == DROP_PORT && ctx->protocol == IPPROTO_UDP) {
		count(ctx->protocol, port, DROPPED);
		return SK_DROP;
	}
	if (port < STEER_FIRST || port > STEER_LAST)
		return SK_PASS;
	sk = bpf_map_lookup_elem(&targets, &key);
	if (!sk) {
		count(ctx->protocol, port, NO_TARGET);
		return SK_PASS;
	}
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	count(ctx->protocol, port, err ? NO_TARGET : ASSIGNED);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
