// BPF_CGROUP_SOCK_OPS: records the TCP callbacks of sockets in the cgroup, per operation and per
// connection, answers BPF_SOCK_OPS_RWND_INIT with a configured initial receive window (in MSS), and
// sets SO_PRIORITY on established connections with bpf_setsockopt.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "counts.h"
#include "config.h"

#define AF_INET 2
#define SOL_SOCKET 1
#define SO_PRIORITY 12

COUNTS_MAP(op_count, 32);  // callbacks per BPF_SOCK_OPS_* value

struct conn_key {
	__u32 op;
	__u32 local_port;   // host order
	__u32 remote_port;  // host order
};

KEY_COUNTS_MAP(conns, struct conn_key, 1024);  // TCP_CONNECT, ACTIVE_ESTABLISHED, PASSIVE_ESTABLISHED per port pair

// [0] = RWND_INIT reply in MSS (0: leave the default), [1] = SO_PRIORITY for the connecting side,
// [2] = SO_PRIORITY for the accepting side (0: leave it). Written by the test.
SETTINGS_MAP(config, 4);

SEC("sockops")
int record_ops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;
	if (skops->family != AF_INET)
		return 1;
	if (op < 32)
		count_key(&op_count, &op);

	switch (op) {
	case BPF_SOCK_OPS_RWND_INIT: {
		__u32 rwnd = setting(&config, 0);
		if (rwnd)
			skops->reply = rwnd;
		break;
	}
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB: {
		struct conn_key k = {
			.op = op,
			.local_port = skops->local_port,
			.remote_port = bpf_ntohl(skops->remote_port),
		};
		count_key(&conns, &k);
		if (op != BPF_SOCK_OPS_TCP_CONNECT_CB) {
			int prio = (int)setting(&config, op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB ? 1 : 2);
			if (prio)
				bpf_setsockopt(skops, SOL_SOCKET, SO_PRIORITY, &prio, sizeof(prio));
		}
		break;
	}
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
