/*
 * Classid mode (a tc filter without direct-action): the program's return value is the class the
 * packet goes to. UDP to port 6201 gets class 1:1, to 6203 class 1:3; anything else gets 0, "no
 * match", and the qdisc's own choice (prio: its priomap, class 1:2 for ordinary packets).
 */
#include "tc_common.h"

#define CLASS(major, minor) (((major) << 16) | (minor))

SEC("tc")
int cls_classid(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_header(skb);
	void *data_end = (void *)(long)skb->data_end;
	struct udphdr *udp;

	if (!ip || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return 0;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return 0;
	if (udp->dest == bpf_htons(6201))
		return CLASS(1, 1);
	if (udp->dest == bpf_htons(6203))
		return CLASS(1, 3);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
