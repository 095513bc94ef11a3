/* lwt_in: counts every IPv4 packet routed on input through the route and lets it go on. */
#define LWT_STATS_MAP lwt_in_stats
#include "lwt_common.h"

SEC("lwt_in")
int in_pass(struct __sk_buff *skb)
{
	count_packet(skb);
	return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
