/* Negative case: a socket filter that uses direct packet access (skb->data / skb->data_end).
 * Socket filters may not read those fields; every verifier rejects the program. */
#include "sockfilter_common.h"

SEC("socket")
int direct_access(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return 0;
	return eth->h_proto == bpf_htons(ETH_P_IP) ? skb->len : 0;
}

char LICENSE[] SEC("license") = "GPL";
