/* lwt_in: counts every IPv4 packet routed on input through the route, drops UDP, passes the rest. */
#define LWT_STATS_MAP lwt_in_stats
#include "lwt_common.h"

SEC("lwt_in")
int in_drop_udp(struct __sk_buff *skb)
{
	return drop_udp(skb);
}

char LICENSE[] SEC("license") = "GPL";
