// cgroup v2 ingress and egress filters: count every IPv4 packet a socket in the cgroup sends or
// receives, per protocol and verdict, and refuse UDP to or from port DENY_PORT.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "counter.h"

#define DENY_PORT 7777

// Key: IP protocol | (1 << 8 when the program refused the packet).
// Value: packets, bytes (skb->len: the whole IP packet, which is where cgroup skb programs start).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct counter);
} egress_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct counter);
} ingress_stats SEC(".maps");

static __always_inline void count(void *map, __u32 key, __u32 len)
{
	struct counter *c = bpf_map_lookup_elem(map, &key);
	if (!c) {
		struct counter zero = {};
		bpf_map_update_elem(map, &key, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(map, &key);
		if (!c)
			return;
	}
	counter_add(c, len);
}

// 1 = let the packet through, 0 = refuse it (egress: the sender gets EPERM; ingress: dropped).
static __always_inline int filter(struct __sk_buff *skb, void *map)
{
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 1;
	struct iphdr iph;
	if (bpf_skb_load_bytes(skb, 0, &iph, sizeof(iph)) < 0)
		return 1;
	int allow = 1;
	if (iph.protocol == IPPROTO_UDP) {
		struct udphdr uh;
		if (bpf_skb_load_bytes(skb, iph.ihl * 4, &uh, sizeof(uh)) < 0)
			return 1;
		if (uh.dest == bpf_htons(DENY_PORT))
			allow = 0;
	}
	count(map, iph.protocol | (allow ? 0 : 0x100), skb->len);
	return allow;
}

SEC("cgroup_skb/egress")
int egress_filter(struct __sk_buff *skb)
{
	return filter(skb, &egress_stats);
}

SEC("cgroup_skb/ingress")
int ingress_filter(struct __sk_buff *skb)
{
	return filter(skb, &ingress_stats);
}

char LICENSE[] SEC("license") = "GPL";
