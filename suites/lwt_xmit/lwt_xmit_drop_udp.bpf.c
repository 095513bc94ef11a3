/* lwt_xmit: counts every IPv4 packet sent through the route, drops UDP (BPF_DROP), passes the
 * rest. Uses no helper newer than 4.10, so that the verdict is tested on every kernel. */
#define LWT_STATS_MAP lwt_xmit_stats
#include "lwt_common.h"

SEC("lwt_xmit")
int xmit_drop_udp(struct __sk_buff *skb)
{
	return drop_udp(skb);
}

char LICENSE[] SEC("license") = "GPL";
