/* The `veth_pair` op: two network namespaces joined by a veth pair, set up over rtnetlink in one
 * request (what `ip netns add`, `ip link add … type veth`, `ip addr`, `ip link set up` and
 * `ip neigh replace … nud permanent` do, without a process for each; under TCG each of those
 * costs tens of milliseconds). Namespaces are bind mounts under /run/netns, as iproute2 makes
 * them, so `ip netns exec`, `ip -n` and `ip -all netns delete` work on them. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <net/if.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

#define NETNS_DIR "/run/netns"
#define LOWER_UP 0x10000 /* IFF_LOWER_UP, the carrier (linux/if.h, which clashes with net/if.h) */

struct nlmsg {
	struct nlmsghdr h;
	char buf[1024];
};

static struct rtattr *nla_put(struct nlmsghdr *h, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
	return a;
}

static struct rtattr *nest_begin(struct nlmsghdr *h, unsigned short type)
{
	return nla_put(h, type, NULL, 0);
}

static void nest_end(struct nlmsghdr *h, struct rtattr *a)
{
	a->rta_len = (unsigned short)((char *)h + h->nlmsg_len - (char *)a);
}

static void *put_struct(struct nlmsghdr *h, const void *s, size_t len)
{
	void *p = (char *)h + NLMSG_ALIGN(h->nlmsg_len);
	memcpy(p, s, len);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + (unsigned)NLMSG_ALIGN(len);
	return p;
}

/* Sends one request and reads until the kernel answers it: an ACK or an error (NLMSG_ERROR), or,
 * with `reply`, a message of type `want`, which is left in `rx`. Returns 0 or the kernel's errno
 * (set with fail()). */
static int nl_talk(int fd, struct nlmsghdr *h, const char *what, unsigned short want, struct nlmsghdr **reply, char *rx, size_t rxlen)
{
	static unsigned seq;
	h->nlmsg_flags |= NLM_F_REQUEST | (reply ? 0 : NLM_F_ACK);
	h->nlmsg_seq = ++seq;
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return fail(errno, "%s: netlink send", what);
	for (;;) {
		ssize_t n = recv(fd, rx, rxlen, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail(errno, "%s: netlink receive", what);
		}
		for (struct nlmsghdr *m = (struct nlmsghdr *)rx; NLMSG_OK(m, (unsigned)n); m = NLMSG_NEXT(m, n)) {
			if (m->nlmsg_seq != h->nlmsg_seq)
				continue;
			if (m->nlmsg_type == NLMSG_ERROR) {
				int err = -((struct nlmsgerr *)NLMSG_DATA(m))->error;
				return err ? fail(err, "%s", what) : 0;
			}
			if (reply && m->nlmsg_type == want) {
				*reply = m;
				return 0;
			}
		}
	}
}

/* Sends one request and waits for its ACK. */
static int nl_do(int fd, struct nlmsghdr *h, const char *what)
{
	char rx[8192];
	return nl_talk(fd, h, what, 0, NULL, rx, sizeof(rx));
}

static int nl_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return fail(errno, "netlink socket");
	return fd;
}

/* `ip netns add NAME`: a new namespace, kept alive by a bind mount at /run/netns/NAME. */
static int netns_add(const char *name)
{
	if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return failx(EINVAL, "bad netns name \"%s\"", name);
	char path[256];
	snprintf(path, sizeof(path), NETNS_DIR "/%s", name);
	mkdir(NETNS_DIR, 0755);
	int f = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (f < 0)
		return fail(errno, "netns %s: create %s", name, path);
	close(f);
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		int e = errno;
		unlink(path);
		return fail(e, "netns %s: open /proc/self/ns/net", name);
	}
	int rc = 0;
	if (unshare(CLONE_NEWNET) < 0) {
		rc = fail(errno, "netns %s: unshare", name);
	} else if (mount("/proc/self/ns/net", path, "none", MS_BIND, NULL) < 0) {
		rc = fail(errno, "netns %s: bind mount on %s", name, path);
	}
	if (setns(self, CLONE_NEWNET) < 0) {
		fprintf(stderr, "bpf-agent: cannot return to the original network namespace: %s\n", strerror(errno));
		_exit(70);
	}
	close(self);
	if (rc)
		unlink(path);
	return rc;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return failx(EINVAL, "bad MAC address \"%s\"", s);
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

struct side {
	const char *netns, *ifname;
	struct in_addr ip;
	uint8_t mac[6];
	int ifindex; /* in its namespace, once set up */
};

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, val, strlen(val));
	close(fd);
	return w < 0 ? -1 : 0;
}

static int link_up(int nl, int ifindex, const char *what)
{
	struct nlmsg m = { .h = { .nlmsg_len = NLMSG_LENGTH(0), .nlmsg_type = RTM_NEWLINK } };
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
	put_struct(&m.h, &ifi, sizeof(ifi));
	return nl_do(nl, &m.h, what);
}

/* Inside the side's namespace: IPv6 off, lo up, the address, the link up, the peer's MAC as a
 * permanent neighbour. */
static int side_setup(struct side *s, const struct side *peer, int prefix)
{
	char what[160];
	if (ns_enter(s->netns))
		return -1;
	int rc = -1, nl = nl_open();
	if (nl < 0)
		goto out;
	/* no router solicitations or DAD to disturb exact counts (no IPv6 in the kernel: nothing to do) */
	write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	snprintf(what, sizeof(what), "netns %s: lo up", s->netns);
	if (link_up(nl, 1, what))
		goto out;
	int ifindex = (int)if_nametoindex(s->ifname);
	if (!ifindex) {
		fail(errno, "netns %s: no interface %s", s->netns, s->ifname);
		goto out;
	}
	s->ifindex = ifindex;
	{
		struct nlmsg m = { .h = { .nlmsg_len = NLMSG_LENGTH(0), .nlmsg_type = RTM_NEWADDR, .nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL } };
		struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)prefix, .ifa_index = (unsigned)ifindex };
		put_struct(&m.h, &ifa, sizeof(ifa));
		nla_put(&m.h, IFA_LOCAL, &s->ip, 4);
		nla_put(&m.h, IFA_ADDRESS, &s->ip, 4);
		snprintf(what, sizeof(what), "netns %s: address %s/%d on %s", s->netns, inet_ntoa(s->ip), prefix, s->ifname);
		if (nl_do(nl, &m.h, what))
			goto out;
	}
	snprintf(what, sizeof(what), "netns %s: %s up", s->netns, s->ifname);
	if (link_up(nl, ifindex, what))
		goto out;
	{
		struct nlmsg m = { .h = { .nlmsg_len = NLMSG_LENGTH(0), .nlmsg_type = RTM_NEWNEIGH, .nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE } };
		struct ndmsg nd = { .ndm_family = AF_INET, .ndm_ifindex = ifindex, .ndm_state = NUD_PERMANENT };
		put_struct(&m.h, &nd, sizeof(nd));
		nla_put(&m.h, NDA_DST, &peer->ip, 4);
		nla_put(&m.h, NDA_LLADDR, peer->mac, 6);
		snprintf(what, sizeof(what), "netns %s: neighbour %s on %s", s->netns, inet_ntoa(peer->ip), s->ifname);
		if (nl_do(nl, &m.h, what))
			goto out;
	}
	rc = 0;
out:
	if (nl >= 0)
		close(nl);
	ns_leave();
	return rc;
}

/* Whether the link is ready to carry packets. Bringing the second end of a veth pair up turns the
 * carrier on for both; the second end's queues are activated right away, as it comes up, but the
 * first end's only later, by the kernel's link watch work, and until then its noop qdisc drops
 * what is sent. Link watch sets the operational state just before it activates the queues, so
 * the first end is ready once it is operationally up; the second once it has its carrier and a
 * real qdisc (its operational state, and with it IFF_RUNNING, may lag by up to a second: link
 * watch handles that event late, as not urgent). */
static int link_ready(int nl, int ifindex, bool first, bool *ready, const char *what)
{
	struct nlmsg m = { .h = { .nlmsg_len = NLMSG_LENGTH(0), .nlmsg_type = RTM_GETLINK } };
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
	put_struct(&m.h, &ifi, sizeof(ifi));
	char rx[16384];
	struct nlmsghdr *h = NULL;
	if (nl_talk(nl, &m.h, what, RTM_NEWLINK, &h, rx, sizeof(rx)))
		return -1;
	if (!h)
		return failx(EIO, "%s: the kernel's answer has no link", what);
	struct ifinfomsg *info = NLMSG_DATA(h);
	int len = (int)IFLA_PAYLOAD(h);
	bool up = false, queued = false;
	for (struct rtattr *a = IFLA_RTA(info); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == IFLA_OPERSTATE)
			up = *(uint8_t *)RTA_DATA(a) == 6 /* IF_OPER_UP (linux/if.h, which clashes with net/if.h) */;
		else if (a->rta_type == IFLA_QDISC)
			queued = strcmp((const char *)RTA_DATA(a), "noop") != 0;
	}
	/* not IFF_RUNNING for the second end: it also waits for the operational state */
	*ready = (first ? up : (info->ifi_flags & LOWER_UP) != 0) && queued;
	return 0;
}

/* Waits (at most 5 s) until link_ready() holds for the side's end. */
static int wait_ready(const struct side *s, bool first)
{
	char what[160];
	snprintf(what, sizeof(what), "netns %s: %s", s->netns, s->ifname);
	if (ns_enter(s->netns))
		return -1;
	int rc = -1, nl = nl_open();
	int ifindex = nl < 0 ? 0 : (int)if_nametoindex(s->ifname);
	if (nl >= 0 && !ifindex)
		fail(errno, "%s: no such interface", what);
	uint64_t deadline = now_ns() + 5000000000ull;
	while (ifindex) {
		bool ready = false;
		if (link_ready(nl, ifindex, first, &ready, what))
			break;
		if (ready) {
			rc = 0;
			break;
		}
		if (now_ns() > deadline) {
			failx(ETIMEDOUT, "%s: not ready to carry packets (operationally up, with a qdisc) after 5 s", what);
			break;
		}
		usleep(1000);
	}
	if (nl >= 0)
		close(nl);
	ns_leave();
	return rc;
}

static int req_side(struct req *r, const char *x, struct side *s)
{
	char k[16];
	const char *ip, *mac;
	snprintf(k, sizeof(k), "netns%s", x);
	if (req_str(r, k, &s->netns, NULL))
		return -1;
	snprintf(k, sizeof(k), "ifname%s", x);
	if (req_str(r, k, &s->ifname, NULL))
		return -1;
	if (strlen(s->ifname) >= IFNAMSIZ)
		return failx(EINVAL, "interface name \"%s\" is longer than %d bytes", s->ifname, IFNAMSIZ - 1);
	snprintf(k, sizeof(k), "ip%s", x);
	if (req_str(r, k, &ip, NULL))
		return -1;
	if (inet_pton(AF_INET, ip, &s->ip) != 1)
		return failx(EINVAL, "field \"%s\": bad IPv4 address \"%s\"", k, ip);
	snprintf(k, sizeof(k), "mac%s", x);
	if (req_str(r, k, &mac, NULL))
		return -1;
	return parse_mac(mac, s->mac);
}

int op_veth_pair(struct req *r, struct jbuf *out)
{
	struct side a, b;
	long long prefix;
	bool existing_a;
	if (req_side(r, "A", &a) || req_side(r, "B", &b) || req_int(r, "prefixLen", &prefix, 24, false, 1, 32) ||
	    req_bool(r, "existingA", &existing_a, false))
		return -1;
	if ((!existing_a && netns_add(a.netns)) || netns_add(b.netns))
		return -1;
	int fa = ns_open(a.netns), fb = fa < 0 ? -1 : ns_open(b.netns), nl = fb < 0 ? -1 : nl_open();
	int rc = -1;
	if (nl >= 0) {
		/* the pair, each end created straight into its namespace with its MAC */
		struct nlmsg m = { .h = { .nlmsg_len = NLMSG_LENGTH(0), .nlmsg_type = RTM_NEWLINK, .nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL } };
		struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
		put_struct(&m.h, &ifi, sizeof(ifi));
		nla_put(&m.h, IFLA_IFNAME, a.ifname, strlen(a.ifname) + 1);
		nla_put(&m.h, IFLA_ADDRESS, a.mac, 6);
		nla_put(&m.h, IFLA_NET_NS_FD, &fa, 4);
		struct rtattr *info = nest_begin(&m.h, IFLA_LINKINFO);
		nla_put(&m.h, IFLA_INFO_KIND, "veth", 4);
		struct rtattr *data = nest_begin(&m.h, IFLA_INFO_DATA);
		struct rtattr *peer = nest_begin(&m.h, VETH_INFO_PEER);
		put_struct(&m.h, &ifi, sizeof(ifi));
		nla_put(&m.h, IFLA_IFNAME, b.ifname, strlen(b.ifname) + 1);
		nla_put(&m.h, IFLA_ADDRESS, b.mac, 6);
		nla_put(&m.h, IFLA_NET_NS_FD, &fb, 4);
		nest_end(&m.h, peer);
		nest_end(&m.h, data);
		nest_end(&m.h, info);
		char what[160];
		snprintf(what, sizeof(what), "veth pair %s (netns %s) <-> %s (netns %s)", a.ifname, a.netns, b.ifname, b.netns);
		rc = nl_do(nl, &m.h, what);
	}
	if (nl >= 0)
		close(nl);
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	if (rc)
		return -1;
	if (side_setup(&a, &b, (int)prefix) || side_setup(&b, &a, (int)prefix))
		return -1;
	if (wait_ready(&a, true) || wait_ready(&b, false))
		return -1;
	jb_kint(out, "ifindexA", a.ifindex);
	jb_kint(out, "ifindexB", b.ifindex);
	return 0;
}
