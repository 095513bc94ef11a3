/*
 * Two tcx programs (6.6) for one hook, attached by the agent with BPF_LINK_CREATE. Each counts
 * the suite's packets and stamps the order it ran in from a shared clock; `first` returns the
 * verdict the test wrote into `verdict` (TCX_NEXT, TCX_PASS or TCX_DROP), `second` always hands
 * the packet on (TCX_NEXT).
 */
#include "tcx_common.h"
#include "config.h"

CONFIG_MAP(verdict, __s32, );

enum { CLOCK = 0, FIRST_SEEN = 1, SECOND_SEEN = 2, FIRST_LAST_TICK = 3, SECOND_LAST_TICK = 4, NR_SLOTS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void record(__u32 seen, __u32 last_tick)
{
	__u32 clock = CLOCK;
	__u64 *c = bpf_map_lookup_elem(&stats, &clock), *n = bpf_map_lookup_elem(&stats, &seen),
	      *t = bpf_map_lookup_elem(&stats, &last_tick);

	if (!c || !n || !t)
		return;
	*t = __sync_fetch_and_add(c, 1) + 1;
	__sync_fetch_and_add(n, 1);
}

SEC("tc")
int first(struct __sk_buff *skb)
{
	__s32 *v;

	if (!suite_packet(skb))
		return TCX_NEXT;
	record(FIRST_SEEN, FIRST_LAST_TICK);
	v = config_of(&verdict);
	return v ? *v : TCX_NEXT;
}

SEC("tc")
int second(struct __sk_buff *skb)
{
	if (!suite_packet(skb))
		return TCX_NEXT;
	record(SECOND_SEEN, SECOND_LAST_TICK);
	return TCX_NEXT;
}

char LICENSE[] SEC("license") = "GPL";
