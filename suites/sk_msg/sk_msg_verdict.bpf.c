/*
 * sk_msg (4.17): a verdict on every sendmsg of a socket in the sockmap `socks`, before the data
 * is queued. `verdict` goes by the message's first byte: 'd' is dropped (the writer's send fails
 * with EACCES), 'r' is redirected out of the socket at key 1 (its peer receives it), anything
 * else passes. `cork` holds messages until 10 bytes have come (bpf_msg_cork_bytes), then passes
 * them as one. Runs, bytes (of the first segment, for `verdict`) and verdicts are counted.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "counts.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} socks SEC(".maps");

enum { RUNS = 0, BYTES = 1, PASSED = 2, DROPPED = 3, REDIRECTED = 4, CORKED = 5, NR_STATS };

COUNTS_MAP(stats, NR_STATS);

SEC("sk_msg")
int verdict(struct sk_msg_md *msg)
{
	void *data = (void *)(long)msg->data;
	void *end = (void *)(long)msg->data_end;
	char first;

	if (data + 1 > end)
		return SK_PASS;
	first = *(char *)data;
	count_one(&stats, RUNS);
	count_add(&stats, BYTES, end - data);
	if (first == 'd') {
		count_one(&stats, DROPPED);
		return SK_DROP;
	}
	if (first == 'r') {
		count_one(&stats, REDIRECTED);
		return bpf_msg_redirect_map(msg, &socks, 1, 0);
	}
	count_one(&stats, PASSED);
	return SK_PASS;
}

SEC("sk_msg")
int cork(struct sk_msg_md *msg)
{
	__u32 corked = CORKED;
	__u64 *done = bpf_map_lookup_elem(&stats, &corked);

	count_one(&stats, RUNS);
	/* The first message asks for 10 bytes: the kernel holds the data and runs the program again
	 * on all of it once the writes add up to 10; that run lets it through. */
	if (done && !*done) {
		*done = 1;
		bpf_msg_cork_bytes(msg, 10);
	}
	count_one(&stats, PASSED);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
