/* lwt_xmit: bpf_redirect out of another device. Packets on the route get an Ethernet header
 * (bpf_skb_change_head and the MACs from lwt_redir_cfg: an lwt_xmit packet starts at its IPv4
 * header, and a redirect to an Ethernet device needs one) and leave through the device in
 * lwt_redir_cfg instead of the route's own. Until the test sets the device (ifindex 0) every
 * packet goes on as routed. */
#include <linux/if_ether.h>
#define LWT_STATS_MAP lwt_redir_stats
#include "lwt_common.h"
#include "redirect.h"
#include "counts.h"
#include "config.h"

CONFIG_MAP(lwt_redir_cfg, struct redirect_cfg, PIN_BY_NAME;);

/* [0] redirected, [1] passed as routed, [2] header push or store failed. */
PINNED_COUNTS_MAP(lwt_redir_count, 3);

SEC("lwt_xmit")
int xmit_redirect(struct __sk_buff *skb)
{
	struct redirect_cfg *cfg;
	struct ethhdr eth;

	if (count_packet(skb) < 0)
		return BPF_OK;
	cfg = config_of(&lwt_redir_cfg);
	if (!cfg || !cfg->ifindex) {
		count_one(&lwt_redir_count, 1);
		return BPF_OK;
	}
	__builtin_memcpy(eth.h_dest, cfg->dmac, ETH_ALEN);
	__builtin_memcpy(eth.h_source, cfg->smac, ETH_ALEN);
	eth.h_proto = bpf_htons(ETH_P_IP);
	if (bpf_skb_change_head(skb, sizeof(eth), 0) || bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0)) {
		count_one(&lwt_redir_count, 2);
		return BPF_DROP;
	}
	count_one(&lwt_redir_count, 0);
	return bpf_redirect(cfg->ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
