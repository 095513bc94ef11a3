/* lwt_xmit: counts every IPv4 packet sent through the route, drops UDP (BPF_DROP), passes the
 * rest. Uses no helper newer than 4.10, so that the verdict is tested on every kernel. */
#define LWT_STATS_MAP lwt_xmit_stats
#include "lwt_common.h"

SEC("lwt_xmit")
int xmit_drop_udp(struct __sk_buff *skb)
{
	if (count_packet(skb) == IPPROTO_UDP)
		return BPF_DROP;
	return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
