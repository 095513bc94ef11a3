/* Negative case: reads the IP header without a bounds check; the verifier rejects it, so tc must fail. */
#include "tc_common.h"

SEC("tc")
int cls_unchecked(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct iphdr *ip = data + sizeof(struct ethhdr);

	return ip->protocol == IPPROTO_UDP ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
