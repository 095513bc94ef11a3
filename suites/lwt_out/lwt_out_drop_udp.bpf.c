/* lwt_out: counts every IPv4 packet sent on the route, drops UDP and passes the rest. */
#define LWT_STATS_MAP lwt_out_stats
#include "lwt_common.h"

SEC("lwt_out")
int out_drop_udp(struct __sk_buff *skb)
{
	return drop_udp(skb);
}

char LICENSE[] SEC("license") = "GPL";
