/*
 * sk_reuseport (4.19): the program picks which socket of an SO_REUSEPORT group gets each UDP
 * datagram, from a BPF_MAP_TYPE_REUSEPORT_SOCKARRAY. The pick goes by the packet's length, so
 * the test steers by payload size: len / 100 - 1 is the index (payloads of 100, 200, 300, 400
 * bytes: sockets 0..3, whatever header length the kernel counts). Length 600 and up is dropped;
 * an index with no socket in the array (500) falls back to the kernel's own choice. Every
 * decision is counted per index and outcome.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "counts.h"

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} group SEC(".maps");

enum outcome { SELECTED = 0, NO_SOCKET = 1, DROPPED = 2 };

struct decision {
	__u32 index;
	__u32 outcome;
};

KEY_COUNTS_MAP(decisions, struct decision, 64);

static __always_inline void count(__u32 index, __u32 outcome)
{
	struct decision d = { .index = index, .outcome = outcome };

	count_key(&decisions, &d);
}

SEC("sk_reuseport")
int select_by_length(struct sk_reuseport_md *md)
{
	__u32 index = md->len / 100 - 1;

	if (md->len >= 600) {
		count(index, DROPPED);
		return SK_DROP;
	}
	if (bpf_sk_select_reuseport(md, &group, &index, 0)) {
		count(index, NO_SOCKET);
		return SK_PASS;   /* the kernel picks by its own hash */
	}
	count(index, SELECTED);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
