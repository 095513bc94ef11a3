// Two cgroup egress programs that let every packet through and count what they saw, each in a map
// of its own: one goes on a parent cgroup, the other on its child, to show which program the
// kernel runs for a socket of the child (inheritance, BPF_F_ALLOW_OVERRIDE).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "counter.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counter);
} parent_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counter);
} child_seen SEC(".maps");

static __always_inline int seen(void *map, struct __sk_buff *skb)
{
	__u32 key = 0;
	struct counter *c = bpf_map_lookup_elem(map, &key);

	if (c)
		counter_add(c, skb->len);
	return 1;
}

SEC("cgroup_skb/egress")
int parent_count(struct __sk_buff *skb)
{
	return seen(&parent_seen, skb);
}

SEC("cgroup_skb/egress")
int child_count(struct __sk_buff *skb)
{
	return seen(&child_seen, skb);
}

char LICENSE[] SEC("license") = "GPL";
