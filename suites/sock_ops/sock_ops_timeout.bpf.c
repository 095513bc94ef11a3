// BPF_SOCK_OPS_TIMEOUT_INIT: the reply is the initial retransmission timeout, in jiffies, of the
// cgroup's TCP sockets (the SYN's, for a connect). The value comes from timeout_cfg[0], which the
// test fills (it knows the kernel's HZ); timeout_cfg[1] counts the TIMEOUT_INIT calls answered.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "config.h"

SETTINGS_MAP(timeout_cfg, 2);

SEC("sockops")
int set_timeout_init(struct bpf_sock_ops *skops)
{
	__u32 jiffies;

	if (skops->op != BPF_SOCK_OPS_TIMEOUT_INIT)
		return 1;
	jiffies = take_setting(&timeout_cfg);
	if (jiffies)
		skops->reply = jiffies;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
