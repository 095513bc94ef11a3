/* lwt_xmit: bpf_redirect out of another device. Packets on the route get an Ethernet header
 * (bpf_skb_change_head and the MACs from lwt_redir_cfg: an lwt_xmit packet starts at its IPv4
 * header, and a redirect to an Ethernet device needs one) and leave through the device in
 * lwt_redir_cfg instead of the route's own. Until the test sets the device (ifindex 0) every
 * packet goes on as routed. */
#include <linux/if_ether.h>
#define LWT_STATS_MAP lwt_redir_stats
#include "lwt_common.h"
#include "redirect.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct redirect_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lwt_redir_cfg SEC(".maps");

/* [0] redirected, [1] passed as routed, [2] header push or store failed. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lwt_redir_count SEC(".maps");

static __always_inline void bump(__u32 key)
{
	__u64 *n = bpf_map_lookup_elem(&lwt_redir_count, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("lwt_xmit")
int xmit_redirect(struct __sk_buff *skb)
{
	struct redirect_cfg *cfg;
	struct ethhdr eth;
	__u32 key = 0;

	if (count_packet(skb) < 0)
		return BPF_OK;
	cfg = bpf_map_lookup_elem(&lwt_redir_cfg, &key);
	if (!cfg || !cfg->ifindex) {
		bump(1);
		return BPF_OK;
	}
	__builtin_memcpy(eth.h_dest, cfg->dmac, ETH_ALEN);
	__builtin_memcpy(eth.h_source, cfg->smac, ETH_ALEN);
	eth.h_proto = bpf_htons(ETH_P_IP);
	if (bpf_skb_change_head(skb, sizeof(eth), 0) || bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0)) {
		bump(2);
		return BPF_DROP;
	}
	bump(0);
	return bpf_redirect(cfg->ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
