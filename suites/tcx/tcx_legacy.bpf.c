/*
 * The legacy classifier next to the tcx programs: loaded by `tc filter add … bpf da`, on the
 * clsact qdisc of the same hook. It counts the suite's packets in a map iproute2 pins as
 * /sys/fs/bpf/tc/globals/legacy_seen, and lets them pass (TC_ACT_OK).
 */
#include "tcx_common.h"
#include "counts.h"

PINNED_COUNTS_MAP(legacy_seen, 1);

SEC("tc")
int legacy(struct __sk_buff *skb)
{
	if (suite_packet(skb))
		count_one(&legacy_seen, 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
