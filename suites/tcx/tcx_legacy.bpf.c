/*
 * The legacy classifier next to the tcx programs: loaded by `tc filter add … bpf da`, on the
 * clsact qdisc of the same hook. It counts the suite's packets in a map iproute2 pins as
 * /sys/fs/bpf/tc/globals/legacy_seen, and lets them pass (TC_ACT_OK).
 */
#include "tcx_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} legacy_seen SEC(".maps");

SEC("tc")
int legacy(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *n;

	if (!suite_packet(skb))
		return TC_ACT_OK;
	n = bpf_map_lookup_elem(&legacy_seen, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
