/*
 * BPF LSM programs (5.7), compiled CO-RE against the guest kernel's vmlinux.h. They only work
 * when "bpf" is in the kernel's active LSM list (CONFIG_LSM, or lsm= on the command line).
 *
 * lsm/socket_bind: an IPv4 bind to the port in bh_config, made by a process of the cgroup in
 * bh_config (its id; 0 = any cgroup), fails with EPERM.
 * lsm/file_open: opening the file whose inode number (and device) are in bh_config, by a process
 * of that cgroup, fails with EPERM.
 * Each decision is counted: calls seen for the target (from anywhere), and calls denied.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "counts.h"
#include "config.h"

#define BH_EPERM 1
#define BH_AF_INET 2

struct bh_config {
	__u64 cgroup_id;    /* only processes of this cgroup are refused (0: any) */
	__u64 inode;        /* file_open: this inode ... */
	__u32 dev;          /* ... on this device (the kernel's dev_t: major << 20 | minor) */
	__u16 port;         /* socket_bind: this port (host order) */
	__u16 pad;
};

CONFIG_MAP(bh_config, struct bh_config, );

enum { BH_BIND_PORT_SEEN, BH_BIND_DENIED, BH_OPEN_SEEN, BH_OPEN_DENIED, BH_NR_COUNTS };

COUNTS_MAP(bh_counts, BH_NR_COUNTS);

static __always_inline struct bh_config *bh_get_config(void)
{
	return config_of(&bh_config);
}

/* A bind or open the configuration names, counted in `seen`: refused with EPERM, and counted in
 * `denied`, when the caller is in the configured cgroup (cgroup_id 0: any caller). */
static __always_inline int refuse(struct bh_config *c, __u32 seen, __u32 denied)
{
	count_one(&bh_counts, seen);
	if (c->cgroup_id && bpf_get_current_cgroup_id() != c->cgroup_id)
		return 0;
	count_one(&bh_counts, denied);
	return -BH_EPERM;
}

SEC("lsm/socket_bind")
int BPF_PROG(deny_bind, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	struct bh_config *c = bh_get_config();
	struct sockaddr_in sin = {};

	if (ret)
		return ret;     /* an earlier LSM already refused */
	if (!c || !c->port || addrlen < (int)sizeof(sin))
		return 0;
	bpf_probe_read_kernel(&sin, sizeof(sin), address);
	if (sin.sin_family != BH_AF_INET || __builtin_bswap16(sin.sin_port) != c->port)
		return 0;
	return refuse(c, BH_BIND_PORT_SEEN, BH_BIND_DENIED);
}

SEC("lsm/file_open")
int BPF_PROG(deny_open, struct file *file, int ret)
{
	struct bh_config *c = bh_get_config();
	struct inode *inode;

	if (ret)
		return ret;
	if (!c || !c->inode)
		return 0;
	inode = file->f_inode;
	if (inode->i_ino != c->inode || inode->i_sb->s_dev != c->dev)
		return 0;
	return refuse(c, BH_OPEN_SEEN, BH_OPEN_DENIED);
}

char LICENSE[] SEC("license") = "GPL";
