/* bpf-agent: making sockets (statistics sockets, TCP pairs, a test creation) in a netns, or in a cgroup through a helper child. */
#define _GNU_SOURCE
#include "attach.h"
#include "socks.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62 /* 5.1; glibc headers may lack it */
#endif
#ifndef SO_ATTACH_BPF
#define SO_ATTACH_BPF 50
#endif

/* ---------- socket creation (in-process or in a cgroup child) ---------- */

struct sockspec {
	enum skind kind;
	const char *ifname;       /* packet */
	struct in_addr addr;      /* udp */
	int port;                 /* udp */
	int prog_fd;              /* SO_ATTACH_BPF, or -1 */
	const char *prog_name;
	const char *netns;
};

static int make_sock(const struct sockspec *sp, int *out)
{
	const char *ns = ns_label(sp->netns);
	bool packet = sp->kind == SK_PACKET;
	union {
		struct sockaddr_ll ll;
		struct sockaddr_in in;
	} sa;
	memset(&sa, 0, sizeof(sa));
	socklen_t salen;
	int fd;
	if (packet) {
		unsigned int ifindex;
		if (ifindex_of(sp->ifname, sp->netns, NULL, &ifindex))
			return -1;
		sa.ll.sll_family = AF_PACKET;
		sa.ll.sll_protocol = htons(ETH_P_ALL);
		sa.ll.sll_ifindex = (int)ifindex;
		salen = sizeof(sa.ll);
		/* protocol 0: receive nothing until bound, so the filter sees every counted packet */
		fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	} else {
		sa.in.sin_family = AF_INET;
		sa.in.sin_addr = sp->addr;
		sa.in.sin_port = htons((uint16_t)sp->port);
		salen = sizeof(sa.in);
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	}
	if (fd < 0)
		return fail(errno, "socket(%s) in %s", packet ? "AF_PACKET" : "AF_INET, SOCK_DGRAM", ns);
	set_rcvbuf(fd, STAT_RCVBUF);
	if (sp->prog_fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &sp->prog_fd, sizeof(sp->prog_fd)) < 0) {
		int e = errno;
		close(fd);
		return fail(e, "SO_ATTACH_BPF prog %s", sp->prog_name);
	}
	if (bind(fd, (struct sockaddr *)&sa, salen) < 0) {
		int e = errno;
		close(fd);
		if (packet)
			return fail(e, "bind packet socket to %s in %s", sp->ifname, ns);
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &sp->addr, a, sizeof(a));
		return fail(e, "bind %s:%d in %s", a, sp->port, ns);
	}
	*out = fd;
	return 0;
}

static int child_make_sock(void *arg, struct child_res *res, int *fds, int maxfds)
{
	if (maxfds < 1)
		return failx(EINVAL, "internal: no room for fds");
	if (make_sock(arg, &fds[0]))
		return -1;
	res->nfds = 1;
	return 0;
}

static int create_stat_sock(struct req *r, struct jbuf *out, struct sockspec *sp)
{
	const char *cgroup;
	if (req_str(r, "netns", &sp->netns, "") || req_str_opt(r, "cgroup", &cgroup))
		return -1;
	if (ns_enter(sp->netns))
		return -1;
	int fd = -1, rc;
	if (cgroup && *cgroup) {
		struct child_res res;
		rc = run_in_cgroup(cgroup, child_make_sock, sp, &res, &fd, 1, 10 * 1000000000ll);
		if (rc == 0 && res.nfds != 1)
			rc = failx(EIO, "helper child returned no socket");
	} else {
		rc = make_sock(sp, &fd);
	}
	ns_leave();
	if (rc)
		return -1;
	struct asock *s = sock_add(fd, sp->kind);
	if (!s) {
		close(fd);
		return fail(ENOMEM, "socket table");
	}
	jb_kint(out, "sock", s->id);
	return 0;
}

int op_udp_listen(struct req *r, struct jbuf *out)
{
	struct sockspec sp;
	memset(&sp, 0, sizeof(sp));
	sp.kind = SK_UDP_LISTEN;
	sp.prog_fd = -1;
	long long port;
	if (req_ip4(r, "addr", &sp.addr, "0.0.0.0") || req_int(r, "port", &port, 0, true, 0, 65535))
		return -1;
	sp.port = (int)port;
	return create_stat_sock(r, out, &sp);
}

int op_sock_open(struct req *r, struct jbuf *out)
{
	struct sockspec sp;
	memset(&sp, 0, sizeof(sp));
	sp.prog_fd = -1;
	const char *kind, *objname;
	if (req_str(r, "kind", &kind, NULL) || req_str_opt(r, "obj", &objname))
		return -1;
	if (strcmp(kind, "packet") == 0) {
		sp.kind = SK_PACKET;
		if (req_str(r, "ifname", &sp.ifname, NULL))
			return -1;
	} else if (strcmp(kind, "udp") == 0) {
		long long port;
		sp.kind = SK_UDP;
		if (req_ip4(r, "addr", &sp.addr, "0.0.0.0") || req_int(r, "port", &port, 0, true, 0, 65535))
			return -1;
		sp.port = (int)port;
	} else {
		return failx(EINVAL, "unknown kind \"%s\" (packet or udp)", kind);
	}
	if (objname) {
		struct attach a;
		if (req_attach(r, &a))
			return -1;
		sp.prog_fd = a.fd;
		sp.prog_name = a.prog;
	}
	return create_stat_sock(r, out, &sp);
}

/* ---------- TCP pairs and stream sockets ---------- */

static void lo_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
}

struct pairspec {
	struct in_addr addr;
	int port;
	int count;
	const char *netns;
};

/* fds[2i] = client, fds[2i+1] = server; v[0] = the listening port */
static int make_pairs(const struct pairspec *ps, int *fds, int *nfds, int *port_out)
{
	const char *ns = ns_label(ps->netns);
	char a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &ps->addr, a, sizeof(a));
	lo_up();
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return fail(errno, "socket in %s", ns);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr = ps->addr;
	sin.sin_port = htons((uint16_t)ps->port);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int e = errno;
		close(lfd);
		return fail(e, "bind %s:%d in %s", a, ps->port, ns);
	}
	socklen_t sl = sizeof(sin);
	getsockname(lfd, (struct sockaddr *)&sin, &sl);
	*port_out = ntohs(sin.sin_port);
	if (listen(lfd, ps->count + 8) < 0) {
		int e = errno;
		close(lfd);
		return fail(e, "listen %s:%d in %s", a, *port_out, ns);
	}
	int n = 0;
	for (int i = 0; i < ps->count; i++) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c < 0) {
			fail(errno, "socket in %s", ns);
			goto fail;
		}
		if (connect(c, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
			int e = errno;
			close(c);
			fail(e, "connect to %s:%d in %s", a, *port_out, ns);
			goto fail;
		}
		fds[n++] = c;
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		if (poll(&pfd, 1, 5000) <= 0) {
			fail(ETIMEDOUT, "accept on %s:%d in %s", a, *port_out, ns);
			goto fail;
		}
		int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (s < 0) {
			fail(errno, "accept on %s:%d in %s", a, *port_out, ns);
			goto fail;
		}
		fds[n++] = s;
	}
	close(lfd);
	*nfds = n;
	return 0;
fail:
	for (int i = 0; i < n; i++)
		close(fds[i]);
	close(lfd);
	return -1;
}

static int child_make_pairs(void *arg, struct child_res *res, int *fds, int maxfds)
{
	const struct pairspec *ps = arg;
	if (maxfds < 2 * ps->count)
		return failx(EINVAL, "internal: no room for fds");
	int n, port;
	if (make_pairs(ps, fds, &n, &port))
		return -1;
	res->nfds = n;
	res->v[0] = port;
	return 0;
}

int op_tcp_pair(struct req *r, struct jbuf *out)
{
	struct pairspec ps;
	memset(&ps, 0, sizeof(ps));
	const char *cgroup;
	long long port, count;
	if (req_str(r, "netns", &ps.netns, "") || req_ip4(r, "addr", &ps.addr, "127.0.0.1") || req_int(r, "port", &port, 0, false, 0, 65535) ||
	    req_int(r, "count", &count, 1, false, 1, MAX_PAIRS) || req_str_opt(r, "cgroup", &cgroup))
		return -1;
	ps.port = (int)port;
	ps.count = (int)count;
	int fds[2 * MAX_PAIRS];
	int n = 0, lport = 0, rc;
	if (ns_enter(ps.netns))
		return -1;
	if (cgroup && *cgroup) {
		struct child_res cr;
		rc = run_in_cgroup(cgroup, child_make_pairs, &ps, &cr, fds, 2 * ps.count, 30ll * 1000000000ll);
		if (rc == 0) {
			n = cr.nfds;
			lport = (int)cr.v[0];
			if (n != 2 * ps.count) {
				for (int i = 0; i < n; i++)
					close(fds[i]);
				rc = failx(EIO, "helper child returned %d sockets, expected %d", n, 2 * ps.count);
			}
		}
	} else {
		rc = make_pairs(&ps, fds, &n, &lport);
	}
	ns_leave();
	if (rc)
		return -1;
	jb_kint(out, "port", lport);
	jb_key(out, "pairs");
	jb_putc(out, '[');
	for (int i = 0; i < n; i += 2) {
		struct asock *c = sock_add(fds[i], SK_TCP);
		struct asock *s = sock_add(fds[i + 1], SK_TCP);
		if (!c || !s)
			return fail(ENOMEM, "socket table");
		jb_printf(out, "%s{\"client\":%d,\"server\":%d}", i ? "," : "", c->id, s->id);
	}
	jb_putc(out, ']');
	return 0;
}

int op_sockmap_add(struct req *r, struct jbuf *out)
{
	(void)out;
	struct aobj *o;
	struct bpf_map *m;
	struct asock *s;
	long long key;
	if (req_obj(r, &o) || req_map(r, o, "map", &m) || req_int(r, "key", &key, 0, true, 0, 0xffffffffll) ||
	    req_sock(r, "sock", &s))
		return -1;
	const char *mname = bpf_map__name(m);
	uint32_t ks = bpf_map__key_size(m), vs = bpf_map__value_size(m);
	if ((ks != 4 && ks != 8) || (vs != 4 && vs != 8))
		return failx(EINVAL, "map %s: key_size %u / value_size %u, expected 4 or 8", mname, ks, vs);
	if (map_put_sock(m, key, s->fd))
		return fail(errno, "map %s: add sock %d (fd %d) at key %lld", mname, s->id, s->fd, key);
	return 0;
}

/* ---------- socket creation under a cgroup/sock program ---------- */

struct create_spec {
	int family, type, protocol;
};

static int child_create(void *arg, struct child_res *res, int *fds, int maxfds)
{
	(void)fds;
	(void)maxfds;
	const struct create_spec *cs = arg;
	int fd = socket(cs->family, cs->type | SOCK_CLOEXEC, cs->protocol);
	if (fd < 0) {
		res->v[0] = 0;
		res->v[1] = errno;
		return 0;
	}
	res->v[0] = 1;
	res->v[1] = 0;
	uint32_t mark = 0;
	socklen_t ml = sizeof(mark);
	if (getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &ml) == 0)
		res->v[2] = mark;
	int prio = 0;
	socklen_t pl = sizeof(prio);
	if (getsockopt(fd, SOL_SOCKET, SO_PRIORITY, &prio, &pl) == 0)
		res->v[4] = prio;
	char dev[IFNAMSIZ + 1];
	memset(dev, 0, sizeof(dev));
	socklen_t dl = IFNAMSIZ;
	if (getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &dl) == 0 && dl > 0) {
		dev[IFNAMSIZ] = '\0';
		snprintf(res->msg, sizeof(res->msg), "%s", dev);
	}
	int ifindex = 0;
	socklen_t il = sizeof(ifindex);
	/* SO_BINDTOIFINDEX (5.1): older kernels refuse it with ENOPROTOOPT, reported as -errno */
	if (getsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &ifindex, &il) == 0)
		res->v[3] = ifindex;
	else
		res->v[3] = -errno;
	close(fd);
	return 0;
}

int op_sock_create_test(struct req *r, struct jbuf *out)
{
	const char *cgroup, *netns, *fam, *type;
	long long proto;
	struct create_spec cs;
	if (req_str(r, "cgroup", &cgroup, "") || req_str(r, "netns", &netns, "") || req_str(r, "family", &fam, "inet") ||
	    req_str(r, "type", &type, "dgram") || req_int(r, "protocol", &proto, 0, false, 0, 255))
		return -1;
	static const char *const families[] = { "inet", "inet6", NULL }, *const types[] = { "stream", "dgram", "raw", NULL };
	static const int family_values[] = { AF_INET, AF_INET6 }, type_values[] = { SOCK_STREAM, SOCK_DGRAM, SOCK_RAW };
	if (str_pick(fam, families, family_values, &cs.family))
		return failx(EINVAL, "unknown family \"%s\" (inet or inet6)", fam);
	if (str_pick(type, types, type_values, &cs.type))
		return failx(EINVAL, "unknown type \"%s\" (stream, dgram or raw)", type);
	cs.protocol = (int)proto;
	if (cs.type == SOCK_RAW && cs.protocol == 0)
		cs.protocol = cs.family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	if (ns_enter(netns))
		return -1;
	struct child_res cr;
	int rc;
	if (*cgroup) {
		rc = run_in_cgroup(cgroup, child_create, &cs, &cr, NULL, 0, 10ll * 1000000000ll);
	} else {
		memset(&cr, 0, sizeof(cr));
		rc = child_create(&cs, &cr, NULL, 0);
	}
	ns_leave();
	if (rc)
		return -1;
	jb_kbool(out, "created", cr.v[0] != 0);
	jb_kint(out, "createErrno", cr.v[1]);
	jb_kint(out, "mark", cr.v[2]);
	jb_kstr(out, "boundDev", cr.msg);
	jb_kint(out, "boundIfindex", cr.v[3] < 0 ? 0 : cr.v[3]);
	jb_kint(out, "boundIfindexErrno", cr.v[3] < 0 ? -cr.v[3] : 0);
	jb_kint(out, "priority", cr.v[4]);
	return 0;
}
