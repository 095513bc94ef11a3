/*
 * Counts, per UDP destination port, the IPv4 packets that the ingress hook of the device it sits
 * on sees: on the target of tc_redirect_ingress.bpf.c, what a redirect to that device's ingress
 * delivered there.
 */
#include "tc_common.h"

/* Per UDP destination port: packets and bytes seen on the target device's ingress. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct counter);
	PIN_BY_NAME;
} arrived_in SEC(".maps");

SEC("tc")
int cls_ingress_count(struct __sk_buff *skb)
{
	int port = udp_dport(skb);
	__u32 key;
	struct counter *c, fresh = { 1, skb->len };

	if (port < 0)
		return TC_ACT_OK;
	key = port;
	c = bpf_map_lookup_elem(&arrived_in, &key);
	if (c)
		counter_add(c, skb->len);
	else
		bpf_map_update_elem(&arrived_in, &key, &fresh, BPF_NOEXIST);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
