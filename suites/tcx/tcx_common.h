/* tcx suite: UDP to port 9000 is the suite's traffic; everything else passes untouched. */
#pragma once
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "packet.h"

#define SUITE_PORT 9000

/* tcx verdicts (6.6): TCX_NEXT hands the packet on (to the next tcx program, then to the legacy
 * tc programs); TCX_PASS (TC_ACT_OK) and TCX_DROP end it. Debian 12's headers predate them. */
#define TCX_NEXT -1
#define TCX_PASS 0
#define TCX_DROP 2

static __always_inline int suite_packet(struct __sk_buff *skb)
{
	struct udphdr *udp = eth_ipv4_udp((void *)(long)skb->data, (void *)(long)skb->data_end);

	return udp && udp->dest == bpf_htons(SUITE_PORT);
}
