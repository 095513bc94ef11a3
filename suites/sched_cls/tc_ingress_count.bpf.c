/*
 * Counts, per UDP destination port, the IPv4 packets that the ingress hook of the device it sits
 * on sees: on the target of tc_redirect_ingress.bpf.c, what a redirect to that device's ingress
 * delivered there.
 */
#include "tc_common.h"

/* Per UDP destination port: packets and bytes seen on the target device's ingress. */
COUNTER_MAP(arrived_in, BPF_MAP_TYPE_HASH, 16, PIN_BY_NAME;);

SEC("tc")
int cls_ingress_count(struct __sk_buff *skb)
{
	int port = udp_dport(skb);

	if (port >= 0)
		counter_bump_key(&arrived_in, port, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
