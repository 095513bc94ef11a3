/* lwt_xmit: encapsulates every IPv4 packet in an outer IPv4 header (IPIP, protocol 4) with
 * bpf_lwt_push_encap(BPF_LWT_ENCAP_IP) and has the kernel route it again by the outer header
 * (BPF_LWT_REROUTE). The outer addresses come from lwt_xmit_encap_cfg[0], which the test writes
 * through the map's pin; until then every packet is dropped. Needs Linux 5.2. */
#define LWT_STATS_MAP lwt_xmit_stats
#include "lwt_common.h"
#include "counts.h"
#include "config.h"

struct encap_cfg {
	__be32 saddr;
	__be32 daddr;
};

CONFIG_MAP(lwt_xmit_encap_cfg, struct encap_cfg, PIN_BY_NAME;);

/* [0]: packets encapsulated, [1]: packets dropped for want of a configuration, [2]: push failures. */
PINNED_COUNTS_MAP(lwt_xmit_encap_result, 3);

SEC("lwt_xmit")
int xmit_ipip(struct __sk_buff *skb)
{
	struct encap_cfg *cfg;
	struct iphdr outer = {};

	if (count_packet(skb) < 0)
		return BPF_OK;
	cfg = config_of(&lwt_xmit_encap_cfg);
	if (!cfg || !cfg->daddr) {
		count_one(&lwt_xmit_encap_result, 1);
		return BPF_DROP;
	}
	outer.version = 4;
	outer.ihl = 5;
	outer.ttl = 64;
	outer.protocol = IPPROTO_IPIP;
	outer.tot_len = bpf_htons(skb->len + sizeof(outer));
	outer.saddr = cfg->saddr;
	outer.daddr = cfg->daddr;
	/* check stays 0: the kernel computes the outer header's checksum. */
	if (bpf_lwt_push_encap(skb, BPF_LWT_ENCAP_IP, &outer, sizeof(outer)) < 0) {
		count_one(&lwt_xmit_encap_result, 2);
		return BPF_DROP;
	}
	count_one(&lwt_xmit_encap_result, 0);
	return BPF_LWT_REROUTE;
}

char LICENSE[] SEC("license") = "GPL";
