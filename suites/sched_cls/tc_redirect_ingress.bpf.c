/*
 * bpf_redirect to another device's ingress: UDP to port 6101 arriving on the device this program
 * sits on is handed to the receive path of the device in redir_in_cfg (BPF_F_INGRESS; the flags
 * come from the map too, so that the test can show the egress case beside it).
 * tc_ingress_count.bpf.c, on the target's own ingress hook, counts what arrives there.
 */
#include "tc_common.h"
#include "config.h"

#define REDIRECT_PORT 6101

struct redir_in_cfg {
	__u32 ifindex;
	__u32 flags;
};

CONFIG_MAP(redir_in_cfg, struct redir_in_cfg, PIN_BY_NAME;);

/* [0] redirected, [1] passed. */
PINNED_COUNTS_MAP(redir_in_count, 2);

SEC("tc")
int cls_redirect_ingress(struct __sk_buff *skb)
{
	struct redir_in_cfg *cfg = config_of(&redir_in_cfg);

	if (!cfg || !cfg->ifindex || udp_dport(skb) != REDIRECT_PORT) {
		count_one(&redir_in_count, 1);
		return TC_ACT_OK;
	}
	count_one(&redir_in_count, 0);
	return bpf_redirect(cfg->ifindex, cfg->flags);
}

char LICENSE[] SEC("license") = "GPL";
