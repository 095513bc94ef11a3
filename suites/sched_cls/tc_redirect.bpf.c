/*
 * Redirect: UDP datagrams to port 6001 get new MAC addresses and leave through another interface
 * (bpf_redirect, egress of that interface). The interface and the MACs come from redir_cfg, which
 * the test fills after tc loaded the object; until then (ifindex 0) everything passes.
 */
#include "tc_common.h"
#include "config.h"
#include "redirect.h"

#define REDIRECT_PORT 6001

CONFIG_MAP(redir_cfg, struct redirect_cfg, PIN_BY_NAME;);

/* [0] redirected, [1] passed (IPv4, not for the redirect port), [2] MAC rewrite failed. */
PINNED_COUNTS_MAP(redir_count, 3);

SEC("tc")
int cls_redirect(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_header(skb);
	void *data_end = (void *)(long)skb->data_end;
	struct redirect_cfg *cfg;
	struct udphdr *udp;

	if (!ip)
		return TC_ACT_OK;
	udp = ipv4_udp(ip, data_end);
	cfg = config_of(&redir_cfg);
	if (!cfg || !cfg->ifindex || !udp || udp->dest != bpf_htons(REDIRECT_PORT)) {
		count_one(&redir_count, 1);
		return TC_ACT_OK;
	}
	/* dmac and smac are adjacent, as in the Ethernet header. */
	if (bpf_skb_store_bytes(skb, 0, cfg->dmac, 2 * ETH_ALEN, 0)) {
		count_one(&redir_count, 2);
		return TC_ACT_SHOT;
	}
	count_one(&redir_count, 0);
	return bpf_redirect(cfg->ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
