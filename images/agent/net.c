/* bpf-agent: sockets, traffic generation and helper children. See PROTOCOL.md. */
#define _GNU_SOURCE
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62 /* 5.1; glibc headers may lack it */
#endif

#ifndef SO_ATTACH_BPF
#define SO_ATTACH_BPF 50
#endif
#ifndef SOL_RAW
#define SOL_RAW 255
#endif
#ifndef ICMP_FILTER
#define ICMP_FILTER 1
#endif

#define MAX_LENGTHS 1000
#define STAT_RCVBUF (32 << 20)
#define MAX_PAIRS 100

/* ---------- socket table ---------- */

enum skind { SK_UDP_LISTEN, SK_UDP, SK_PACKET, SK_TCP };

static const char *skind_name(enum skind k)
{
	switch (k) {
	case SK_UDP_LISTEN: return "udp_listen";
	case SK_UDP: return "udp";
	case SK_PACKET: return "packet";
	case SK_TCP: return "tcp";
	}
	return "?";
}

struct asock {
	int id;
	int fd;
	enum skind kind;
	bool stat;            /* counted in the background; read with sock_stats */
	uint64_t packets, bytes;
	uint32_t lengths[MAX_LENGTHS];
	int nlen;
	struct asock *next;
};

static struct asock *g_socks;
static int g_next_sock = 1;
static uint8_t g_rx[65536 + 256];

static struct asock *sock_add(int fd, enum skind kind)
{
	struct asock *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = g_next_sock++;
	s->fd = fd;
	s->kind = kind;
	s->stat = kind != SK_TCP;
	if (s->stat) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	}
	/* append so that handles list in creation order */
	struct asock **pp = &g_socks;
	while (*pp)
		pp = &(*pp)->next;
	*pp = s;
	return s;
}

static int req_sock(const struct req *r, const char *key, struct asock **out)
{
	*out = NULL;
	long long id;
	if (req_int(r, key, &id, 0, true, 0, INT_MAX))
		return -1;
	for (struct asock *s = g_socks; s; s = s->next) {
		if (s->id == id) {
			*out = s;
			return 0;
		}
	}
	return failx(ENOENT, "unknown sock %lld", id);
}

void socks_close_all(void)
{
	while (g_socks) {
		struct asock *s = g_socks;
		g_socks = s->next;
		close(s->fd);
		free(s);
	}
}

int stat_fds_count(void)
{
	int n = 0;
	for (struct asock *s = g_socks; s; s = s->next)
		n += s->stat;
	return n;
}

/* Reads everything queued on a statistics socket. */
static void drain(struct asock *s)
{
	for (int i = 0; i < 100000; i++) {
		ssize_t n = recv(s->fd, g_rx, sizeof(g_rx), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; /* EAGAIN, or a pending socket error which recv has now cleared */
		}
		s->packets++;
		s->bytes += (uint64_t)n;
		if (s->nlen < MAX_LENGTHS)
			s->lengths[s->nlen++] = (uint32_t)n;
	}
}

int pump(int extra_fd, int64_t timeout_ns)
{
	struct pollfd stackfds[64];
	struct pollfd *fds = stackfds;
	struct asock *stackmap[64];
	struct asock **map = stackmap;
	int n = 0, cap = 64;
	int total = (g_in_child ? 0 : stat_fds_count()) + 1;
	if (total > cap) {
		fds = calloc((size_t)total, sizeof(*fds));
		map = calloc((size_t)total, sizeof(*map));
		if (!fds || !map) {
			free(fds);
			free(map);
			fds = stackfds;
			map = stackmap;
			total = 1; /* degrade: no background counting */
		}
		cap = total;
	}
	if (!g_in_child && total > 1) {
		for (struct asock *s = g_socks; s && n < cap - 1; s = s->next) {
			if (!s->stat)
				continue;
			fds[n].fd = s->fd;
			fds[n].events = POLLIN;
			fds[n].revents = 0;
			map[n++] = s;
		}
	}
	int extra_idx = -1;
	if (extra_fd >= 0) {
		extra_idx = n;
		fds[n].fd = extra_fd;
		fds[n].events = POLLIN;
		fds[n].revents = 0;
		n++;
	}
	struct timespec ts, *tsp = NULL;
	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tsp = &ts;
	}
	int ready = ppoll(fds, (nfds_t)n, tsp, NULL);
	int extra_ready = 0;
	if (ready > 0) {
		for (int i = 0; i < n; i++) {
			if (!fds[i].revents)
				continue;
			if (i == extra_idx)
				extra_ready = 1;
			else
				drain(map[i]);
		}
	}
	if (fds != stackfds) {
		free(fds);
		free(map);
	}
	return extra_ready;
}

static void set_rcvbuf(int fd, int bytes)
{
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

static int parse_ip4(const char *field, const char *s, struct in_addr *a)
{
	if (inet_pton(AF_INET, s, a) != 1)
		return failx(EINVAL, "field \"%s\": \"%s\" is not an IPv4 address", field, s);
	return 0;
}

/* ---------- helper children in a cgroup ---------- */

static int send_fds(int sock, const struct child_res *res, const int *fds, int nfds)
{
	struct iovec iov = { .iov_base = (void *)res, .iov_len = sizeof(*res) };
	struct msghdr mh;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	char *cbuf = NULL;
	if (nfds > 0) {
		size_t clen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cbuf = calloc(1, clen);
		if (!cbuf)
			return -1;
		mh.msg_control = cbuf;
		mh.msg_controllen = clen;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	ssize_t w = sendmsg(sock, &mh, 0);
	free(cbuf);
	return w < 0 ? -1 : 0;
}

int run_in_cgroup(const char *cgroup, child_fn fn, void *arg, struct child_res *res, int *fds, int maxfds,
		  int64_t timeout_ns)
{
	int sp[2];
	memset(res, 0, sizeof(*res));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return fail(errno, "socketpair");
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sp[0]);
		close(sp[1]);
		return fail(e, "fork");
	}
	if (pid == 0) {
		close(sp[0]);
		g_in_child = true;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct child_res cr;
		memset(&cr, 0, sizeof(cr));
		int cfds[2 * MAX_PAIRS + 2];
		int cmax = maxfds < (int)(sizeof(cfds) / sizeof(cfds[0])) ? maxfds : (int)(sizeof(cfds) / sizeof(cfds[0]));
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
		int cfd = open(path, O_WRONLY | O_CLOEXEC);
		int rc = 0;
		if (cfd < 0) {
			rc = fail(errno, "cgroup %s: open %s", cgroup, path);
		} else {
			char pidbuf[32];
			int l = snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)getpid());
			if (write(cfd, pidbuf, (size_t)l) != l)
				rc = fail(errno, "cgroup %s: join (write %s)", cgroup, path);
			close(cfd);
		}
		if (rc == 0)
			rc = fn(arg, &cr, cfds, cmax);
		if (rc) {
			cr.err = err_errno() ? err_errno() : EIO;
			snprintf(cr.msg, sizeof(cr.msg), "%s", err_msg());
			cr.nfds = 0;
		}
		if (cr.nfds > cmax)
			cr.nfds = cmax;
		if (send_fds(sp[1], &cr, cfds, cr.nfds) < 0)
			_exit(3);
		_exit(0);
	}
	close(sp[1]);
	int rc = -1;
	uint64_t deadline = now_ns() + (uint64_t)timeout_ns;
	for (;;) {
		uint64_t now = now_ns();
		if (now >= deadline) {
			kill(pid, SIGKILL);
			fail(ETIMEDOUT, "helper child in cgroup %s did not finish", cgroup);
			goto out;
		}
		if (pump(sp[0], (int64_t)(deadline - now)))
			break;
	}
	struct iovec iov = { .iov_base = res, .iov_len = sizeof(*res) };
	size_t clen = CMSG_SPACE(sizeof(int) * (size_t)(maxfds > 0 ? maxfds : 1));
	char *cbuf = calloc(1, clen);
	struct msghdr mh;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = cbuf ? clen : 0;
	ssize_t n = recvmsg(sp[0], &mh, MSG_CMSG_CLOEXEC);
	if (n != (ssize_t)sizeof(*res)) {
		free(cbuf);
		int status = 0;
		waitpid(pid, &status, 0);
		pid = -1;
		fail(EIO, "helper child in cgroup %s exited without a result (status 0x%x)", cgroup, status);
		goto out;
	}
	int got = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			int *p = (int *)CMSG_DATA(cm);
			for (int i = 0; i < k; i++) {
				if (got < maxfds)
					fds[got++] = p[i];
				else
					close(p[i]);
			}
		}
	}
	free(cbuf);
	res->nfds = got;
	if (res->err) {
		for (int i = 0; i < got; i++)
			close(fds[i]);
		res->nfds = 0;
		fail_raw(res->err, res->msg);
		goto out;
	}
	rc = 0;
out:
	close(sp[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return rc;
}

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
	int fd = -1;
	const char *ns = ns_label(sp->netns);
	if (sp->kind == SK_PACKET) {
		unsigned int ifindex = if_nametoindex(sp->ifname);
		if (!ifindex)
			return fail(errno ? errno : ENODEV, "ifindex for %s in %s", sp->ifname, ns);
		/* protocol 0: receive nothing until bound, so the filter sees every counted packet */
		fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return fail(errno, "socket(AF_PACKET) in %s", ns);
		set_rcvbuf(fd, STAT_RCVBUF);
		if (sp->prog_fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &sp->prog_fd, sizeof(sp->prog_fd)) < 0) {
			int e = errno;
			close(fd);
			return fail(e, "SO_ATTACH_BPF prog %s", sp->prog_name);
		}
		struct sockaddr_ll sll;
		memset(&sll, 0, sizeof(sll));
		sll.sll_family = AF_PACKET;
		sll.sll_protocol = htons(ETH_P_ALL);
		sll.sll_ifindex = (int)ifindex;
		if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
			int e = errno;
			close(fd);
			return fail(e, "bind packet socket to %s in %s", sp->ifname, ns);
		}
	} else {
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return fail(errno, "socket(AF_INET, SOCK_DGRAM) in %s", ns);
		set_rcvbuf(fd, STAT_RCVBUF);
		if (sp->prog_fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &sp->prog_fd, sizeof(sp->prog_fd)) < 0) {
			int e = errno;
			close(fd);
			return fail(e, "SO_ATTACH_BPF prog %s", sp->prog_name);
		}
		struct sockaddr_in sin;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr = sp->addr;
		sin.sin_port = htons((uint16_t)sp->port);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
			int e = errno;
			char a[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &sp->addr, a, sizeof(a));
			close(fd);
			return fail(e, "bind %s:%d in %s", a, sp->port, ns);
		}
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
	const char *addr;
	long long port;
	if (req_str(r, "addr", &addr, "0.0.0.0") || parse_ip4("addr", addr, &sp.addr) ||
	    req_int(r, "port", &port, 0, true, 0, 65535))
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
		const char *addr;
		long long port;
		sp.kind = SK_UDP;
		if (req_str(r, "addr", &addr, "0.0.0.0") || parse_ip4("addr", addr, &sp.addr) ||
		    req_int(r, "port", &port, 0, true, 0, 65535))
			return -1;
		sp.port = (int)port;
	} else {
		return failx(EINVAL, "unknown kind \"%s\" (packet or udp)", kind);
	}
	if (objname) {
		struct aobj *o;
		struct bpf_program *p;
		if (req_obj(r, &o) || req_prog(r, o, &p, &sp.prog_fd))
			return -1;
		sp.prog_name = bpf_program__name(p);
	}
	return create_stat_sock(r, out, &sp);
}

int op_sock_stats(struct req *r, struct jbuf *out)
{
	struct asock *s;
	long long wait, expect;
	if (req_sock(r, "sock", &s) || req_int(r, "waitMs", &wait, 200, false, 0, 3600000) ||
	    req_int(r, "expect", &expect, -1, false, -1, 1LL << 40))
		return -1;
	if (!s->stat)
		return failx(EINVAL, "sock %d is a %s socket: use sock_read", s->id, skind_name(s->kind));
	/* keep reading until no packet arrived for waitMs (bounded: waitMs + 10 s in all); once the
	 * expected number arrived (the exact end), only until none arrived for SETTLE_MS, which
	 * still catches a surplus */
	uint64_t wait_ns = (uint64_t)wait * 1000000ull;
	uint64_t start = now_ns(), last = start;
	uint64_t hard = start + wait_ns + 10000000000ull;
	drain(s);
	for (;;) {
		uint64_t now = now_ns();
		uint64_t quiet = expect > 0 && (long long)s->packets >= expect && wait_ns > SETTLE_NS ? SETTLE_NS : wait_ns;
		if (now - last >= quiet || now >= hard)
			break;
		uint64_t before = s->packets;
		pump(-1, (int64_t)(last + quiet - now));
		if (s->packets != before)
			last = now_ns();
	}
	jb_kint(out, "packets", (long long)s->packets);
	jb_kint(out, "bytes", (long long)s->bytes);
	jb_key(out, "lengths");
	jb_putc(out, '[');
	for (int i = 0; i < s->nlen; i++)
		jb_printf(out, i ? ",%u" : "%u", s->lengths[i]);
	jb_putc(out, ']');
	s->packets = s->bytes = 0;
	s->nlen = 0;
	return 0;
}

int op_sock_close(struct req *r, struct jbuf *out)
{
	(void)out;
	struct asock *s;
	if (req_sock(r, "sock", &s))
		return -1;
	for (struct asock **pp = &g_socks; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	close(s->fd);
	free(s);
	return 0;
}

/* ---------- send ---------- */

enum sproto { P_ICMP, P_UDP, P_TCP };

struct send_params {
	enum sproto proto;
	bool has_src;
	struct in_addr src, dst;
	long long count, size, sport, dport, wait_ms, interval_us;
	const char *netns;
};

struct send_result {
	long long sent, replies, reply_bytes, send_errors;
	int last_errno;
};

static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len > 1) {
		sum += (uint32_t)(p[0] << 8 | p[1]);
		p += 2;
		len -= 2;
	}
	if (len)
		sum += (uint32_t)(p[0] << 8);
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Errors that mean the send cannot be made at all (as opposed to one packet being dropped). */
static bool send_error_fatal(int e)
{
	switch (e) {
	case ENETUNREACH: case EHOSTUNREACH: case EADDRNOTAVAIL: case EINVAL: case EMSGSIZE:
	case EAFNOSUPPORT: case EDESTADDRREQ: case EACCES: case ENETDOWN: case ENODEV: case ENXIO:
	case EBADF: case EFAULT: case ENOTSOCK: case EOPNOTSUPP:
		return true;
	default:
		return false;
	}
}

/* Is this received packet a reply we count? Returns payload bytes, or -1. */
static long match_reply(const struct send_params *sp, const uint8_t *pkt, ssize_t n, uint16_t icmp_id)
{
	if (sp->proto == P_UDP)
		return n;
	if (n < 20 || (pkt[0] >> 4) != 4)
		return -1;
	size_t ihl = (size_t)(pkt[0] & 15) * 4;
	if (ihl < 20 || (ssize_t)ihl > n)
		return -1;
	const uint8_t *l4 = pkt + ihl;
	ssize_t l4len = n - (ssize_t)ihl;
	if (sp->proto == P_ICMP) {
		if (pkt[9] != IPPROTO_ICMP || l4len < 8)
			return -1;
		if (l4[0] != 0 /* echo reply */ || get16(l4 + 4) != icmp_id)
			return -1;
		return l4len - 8;
	}
	/* TCP: from dst:dport to src:sport with RST, or SYN+ACK */
	if (pkt[9] != IPPROTO_TCP || l4len < 20)
		return -1;
	if (memcmp(pkt + 12, &sp->dst, 4) != 0 || memcmp(pkt + 16, &sp->src, 4) != 0)
		return -1;
	if (get16(l4) != sp->dport || get16(l4 + 2) != sp->sport)
		return -1;
	uint8_t flags = l4[13];
	bool rst = flags & 0x04, syn = flags & 0x02, ack = flags & 0x10;
	if (!rst && !(syn && ack))
		return -1;
	size_t doff = (size_t)(l4[12] >> 4) * 4;
	return l4len > (ssize_t)doff ? l4len - (ssize_t)doff : 0;
}

/* Reads all queued packets on the reply socket; returns the number of replies counted. */
static long collect(const struct send_params *sp, int rfd, struct send_result *res, uint16_t icmp_id)
{
	long got = 0;
	for (int i = 0; i < 100000; i++) {
		ssize_t n = recv(rfd, g_rx, sizeof(g_rx), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		long b = match_reply(sp, g_rx, n, icmp_id);
		if (b >= 0) {
			res->replies++;
			res->reply_bytes += b;
			got++;
		}
	}
	return got;
}

static int do_send(const struct send_params *spc, struct send_result *res)
{
	struct send_params sp = *spc;
	memset(res, 0, sizeof(*res));
	char dsts[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &sp.dst, dsts, sizeof(dsts));
	const char *ns = ns_label(sp.netns);
	int sfd = -1, rfd = -1, rc = -1;
	uint16_t icmp_id = (uint16_t)(g_agent_pid & 0xffff);
	struct sockaddr_in to;
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_addr = sp.dst;
	to.sin_port = sp.proto == P_UDP ? htons((uint16_t)sp.dport) : 0;

	if (sp.proto == P_TCP && !sp.has_src) {
		/* the source address the route to dst picks */
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (u < 0)
			return fail(errno, "socket in %s", ns);
		struct sockaddr_in c = to;
		c.sin_port = htons((uint16_t)(sp.dport ? sp.dport : 9));
		struct sockaddr_in me;
		socklen_t ml = sizeof(me);
		if (connect(u, (struct sockaddr *)&c, sizeof(c)) < 0 || getsockname(u, (struct sockaddr *)&me, &ml) < 0) {
			int e = errno;
			close(u);
			return fail(e, "no route to %s in %s", dsts, ns);
		}
		close(u);
		sp.src = me.sin_addr;
		sp.has_src = true;
	}

	switch (sp.proto) {
	case P_ICMP: {
		sfd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
		if (sfd < 0)
			return fail(errno, "raw ICMP socket in %s", ns);
		uint32_t mask = ~(1u << 0); /* only echo replies */
		setsockopt(sfd, SOL_RAW, ICMP_FILTER, &mask, sizeof(mask));
		rfd = sfd;
		break;
	}
	case P_UDP:
		sfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (sfd < 0)
			return fail(errno, "UDP socket in %s", ns);
		rfd = sfd;
		break;
	case P_TCP:
		/* the reply socket must exist before the first SYN leaves */
		rfd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
		if (rfd < 0)
			return fail(errno, "raw TCP socket in %s", ns);
		sfd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
		if (sfd < 0) {
			int e = errno;
			close(rfd);
			return fail(e, "raw socket in %s", ns);
		}
		{
			int one = 1;
			setsockopt(sfd, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one));
		}
		break;
	}
	set_rcvbuf(rfd, 16 << 20);
	if (sp.proto != P_TCP && (sp.has_src || sp.proto == P_UDP)) {
		struct sockaddr_in b;
		memset(&b, 0, sizeof(b));
		b.sin_family = AF_INET;
		b.sin_addr = sp.has_src ? sp.src : (struct in_addr){ INADDR_ANY };
		b.sin_port = sp.proto == P_UDP ? htons((uint16_t)sp.sport) : 0;
		if (bind(sfd, (struct sockaddr *)&b, sizeof(b)) < 0) {
			char a[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &b.sin_addr, a, sizeof(a));
			fail(errno, "bind %s:%lld in %s", a, sp.proto == P_UDP ? sp.sport : 0, ns);
			goto out;
		}
	}

	/* one packet buffer: IP header (tcp only) + L4 header + payload */
	size_t hdr = sp.proto == P_TCP ? 40 : (sp.proto == P_ICMP ? 8 : 0);
	size_t plen = hdr + (size_t)sp.size;
	uint8_t *pkt = calloc(1, plen ? plen : 1);
	if (!pkt) {
		fail(ENOMEM, "packet buffer");
		goto out;
	}
	for (long long j = 0; j < sp.size; j++)
		pkt[hdr + (size_t)j] = (uint8_t)j;

	uint64_t interval_ns = (uint64_t)sp.interval_us * 1000ull;
	uint64_t next = now_ns();
	for (long long i = 0; i < sp.count; i++) {
		if (i && interval_ns) {
			next += interval_ns;
			for (;;) {
				uint64_t now = now_ns();
				if (now >= next)
					break;
				if (pump(rfd, (int64_t)(next - now)))
					collect(&sp, rfd, res, icmp_id);
			}
		}
		if (sp.proto == P_ICMP) {
			pkt[0] = 8;
			pkt[1] = 0;
			put16(pkt + 2, 0);
			put16(pkt + 4, icmp_id);
			put16(pkt + 6, (uint16_t)i);
			put16(pkt + 2, csum_fold(csum_add(0, pkt, plen)));
		} else if (sp.proto == P_TCP) {
			uint8_t *ip = pkt, *th = pkt + 20;
			memset(pkt, 0, 40);
			ip[0] = 0x45;
			put16(ip + 2, (uint16_t)plen);
			put16(ip + 6, 0x4000); /* DF */
			ip[8] = 64;
			ip[9] = IPPROTO_TCP;
			memcpy(ip + 12, &sp.src, 4);
			memcpy(ip + 16, &sp.dst, 4);
			put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
			put16(th, (uint16_t)sp.sport);
			put16(th + 2, (uint16_t)sp.dport);
			put32(th + 4, (uint32_t)(1000 + i));
			put32(th + 8, 0);
			th[12] = 5 << 4;
			th[13] = 0x02; /* SYN */
			put16(th + 14, 64240);
			uint8_t pseudo[12];
			memcpy(pseudo, &sp.src, 4);
			memcpy(pseudo + 4, &sp.dst, 4);
			pseudo[8] = 0;
			pseudo[9] = IPPROTO_TCP;
			put16(pseudo + 10, (uint16_t)(plen - 20));
			uint32_t sum = csum_add(0, pseudo, sizeof(pseudo));
			sum = csum_add(sum, th, plen - 20);
			put16(th + 16, csum_fold(sum));
		}
		ssize_t w;
		do {
			w = sendto(sfd, pkt, plen, 0, (struct sockaddr *)&to, sizeof(to));
		} while (w < 0 && errno == EINTR);
		if (w < 0) {
			int e = errno;
			if (send_error_fatal(e)) {
				free(pkt);
				if (res->sent)
					fail(e, "sendto %s in %s (after %lld packets)", dsts, ns, res->sent);
				else
					fail(e, "sendto %s in %s", dsts, ns);
				goto out;
			}
			res->send_errors++;
			res->last_errno = e;
		} else {
			res->sent++;
		}
		/* keep the reply queue short while sending */
		if (pump(rfd, 0))
			collect(&sp, rfd, res, icmp_id);
	}
	free(pkt);

	/* collect replies until none arrived for waitMs (bounded: waitMs + 10 s); once every packet
	 * sent has its reply (the exact end), only until none arrived for SETTLE_MS, which still
	 * catches a surplus */
	uint64_t wait_ns = (uint64_t)sp.wait_ms * 1000000ull;
	uint64_t last = now_ns(), hard = last + wait_ns + 10000000000ull;
	collect(&sp, rfd, res, icmp_id);
	for (;;) {
		uint64_t now = now_ns();
		uint64_t quiet = res->sent && res->replies >= res->sent && wait_ns > SETTLE_NS ? SETTLE_NS : wait_ns;
		if (now - last >= quiet || now >= hard)
			break;
		if (pump(rfd, (int64_t)(last + quiet - now)) && collect(&sp, rfd, res, icmp_id) > 0)
			last = now_ns();
	}
	rc = 0;
out:
	if (rfd >= 0 && rfd != sfd)
		close(rfd);
	if (sfd >= 0)
		close(sfd);
	return rc;
}

static int child_send(void *arg, struct child_res *res, int *fds, int maxfds)
{
	(void)fds;
	(void)maxfds;
	struct send_result sr;
	if (do_send(arg, &sr))
		return -1;
	res->v[0] = sr.sent;
	res->v[1] = sr.replies;
	res->v[2] = sr.reply_bytes;
	res->v[3] = sr.send_errors;
	res->v[4] = sr.last_errno;
	return 0;
}

int op_send(struct req *r, struct jbuf *out)
{
	struct send_params sp;
	memset(&sp, 0, sizeof(sp));
	const char *proto, *src, *dst, *cgroup;
	if (req_str(r, "netns", &sp.netns, "") || req_str(r, "proto", &proto, NULL) || req_str_opt(r, "src", &src) ||
	    req_str(r, "dst", &dst, NULL) || req_str_opt(r, "cgroup", &cgroup) ||
	    req_int(r, "count", &sp.count, 1, false, 0, 10000000) ||
	    req_int(r, "sport", &sp.sport, 40000, false, 0, 65535) || req_int(r, "dport", &sp.dport, 9, false, 0, 65535) ||
	    req_int(r, "intervalUs", &sp.interval_us, 0, false, 0, 60000000))
		return -1;
	if (strcmp(proto, "icmp") == 0)
		sp.proto = P_ICMP;
	else if (strcmp(proto, "udp") == 0)
		sp.proto = P_UDP;
	else if (strcmp(proto, "tcp") == 0)
		sp.proto = P_TCP;
	else
		return failx(EINVAL, "unknown proto \"%s\" (icmp, udp or tcp)", proto);
	/* UDP has no replies unless a program echoes the datagrams: collect them only when asked */
	if (req_int(r, "waitMs", &sp.wait_ms, sp.proto == P_UDP ? 0 : 300, false, 0, 3600000))
		return -1;
	long long maxsize = sp.proto == P_TCP ? 65535 - 40 : 65507;
	if (req_int(r, "size", &sp.size, 32, false, sp.proto == P_TCP ? 0 : 0, maxsize))
		return -1;
	if (parse_ip4("dst", dst, &sp.dst))
		return -1;
	if (src && *src) {
		if (parse_ip4("src", src, &sp.src))
			return -1;
		sp.has_src = true;
	}
	if (ns_enter(sp.netns))
		return -1;
	struct send_result res;
	int rc;
	if (cgroup && *cgroup) {
		struct child_res cr;
		int64_t budget = (int64_t)((uint64_t)sp.count * (uint64_t)sp.interval_us * 1000ull) +
				 (int64_t)sp.wait_ms * 1000000ll + 60ll * 1000000000ll;
		rc = run_in_cgroup(cgroup, child_send, &sp, &cr, NULL, 0, budget);
		if (rc == 0) {
			res.sent = cr.v[0];
			res.replies = cr.v[1];
			res.reply_bytes = cr.v[2];
			res.send_errors = cr.v[3];
			res.last_errno = (int)cr.v[4];
		}
	} else {
		rc = do_send(&sp, &res);
	}
	ns_leave();
	if (rc)
		return -1;
	jb_kint(out, "sent", res.sent);
	jb_kint(out, "replies", res.replies);
	jb_kint(out, "replyBytes", res.reply_bytes);
	if (res.send_errors) {
		jb_kint(out, "sendErrors", res.send_errors);
		jb_kint(out, "sendErrno", res.last_errno);
	}
	return 0;
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
	const char *addr, *cgroup;
	long long port, count;
	if (req_str(r, "netns", &ps.netns, "") || req_str(r, "addr", &addr, "127.0.0.1") ||
	    parse_ip4("addr", addr, &ps.addr) || req_int(r, "port", &port, 0, false, 0, 65535) ||
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
	struct asock *s;
	const char *mname;
	long long key;
	if (req_obj(r, &o) || req_str(r, "map", &mname, NULL) || req_int(r, "key", &key, 0, true, 0, 0xffffffffll) ||
	    req_sock(r, "sock", &s))
		return -1;
	struct bpf_map *m = bpf_object__find_map_by_name(aobj_obj(o), mname);
	if (!m)
		return failx(ENOENT, "obj %s has no map \"%s\"", aobj_name(o), mname);
	int mfd = bpf_map__fd(m);
	if (mfd < 0)
		return failx(EBADF, "obj %s: map %s was not created", aobj_name(o), mname);
	uint32_t ks = bpf_map__key_size(m), vs = bpf_map__value_size(m);
	uint8_t k[8] = { 0 }, v[8] = { 0 };
	if ((ks != 4 && ks != 8) || (vs != 4 && vs != 8))
		return failx(EINVAL, "map %s: key_size %u / value_size %u, expected 4 or 8", mname, ks, vs);
	uint64_t kv = (uint64_t)key, fv = (uint64_t)(unsigned int)s->fd;
	memcpy(k, &kv, ks);   /* little endian: low bytes first */
	memcpy(v, &fv, vs);
	if (bpf_map_update_elem(mfd, k, v, BPF_ANY))
		return fail(errno, "map %s: add sock %d (fd %d) at key %lld", mname, s->id, s->fd, key);
	return 0;
}

int op_sock_write(struct req *r, struct jbuf *out)
{
	struct asock *s;
	const char *data;
	size_t len;
	if (req_sock(r, "sock", &s) || req_bytes(r, "data", &data, &len))
		return -1;
	size_t done = 0;
	uint64_t deadline = now_ns() + 2000000000ull;
	while (done < len) {
		ssize_t w = send(s->fd, data + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w >= 0) {
			done += (size_t)w;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && now_ns() < deadline) {
			struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };
			poll(&pfd, 1, 100);
			continue;
		}
		if (done == 0)
			return fail(errno, "sock %d: send", s->id);
		break;
	}
	jb_kint(out, "written", (long long)done);
	return 0;
}

int op_sock_read(struct req *r, struct jbuf *out)
{
	struct asock *s;
	long long wait, max, expect;
	if (req_sock(r, "sock", &s) || req_int(r, "waitMs", &wait, 200, false, 0, 3600000) ||
	    req_int(r, "max", &max, 1 << 20, false, 1, 64 << 20) || req_int(r, "expect", &expect, -1, false, -1, 64 << 20))
		return -1;
	if (s->stat)
		return failx(EINVAL, "sock %d is a %s statistics socket: use sock_stats", s->id, skind_name(s->kind));
	struct jbuf data = { 0 };
	bool eof = false;
	uint64_t wait_ns = (uint64_t)wait * 1000000ull;
	uint64_t last = now_ns(), hard = last + wait_ns + 10000000000ull;
	int rc = 0;
	for (;;) {
		/* read what is there */
		bool got = false;
		while (data.len < (size_t)max) {
			size_t room = (size_t)max - data.len;
			ssize_t n = recv(s->fd, g_rx, room < sizeof(g_rx) ? room : sizeof(g_rx), MSG_DONTWAIT);
			if (n > 0) {
				jb_putn(&data, (const char *)g_rx, (size_t)n);
				got = true;
				continue;
			}
			if (n == 0) {
				eof = true;
			} else if (errno == EINTR) {
				continue;
			} else if (errno != EAGAIN) {
				if (data.len == 0)
					rc = fail(errno, "sock %d: recv", s->id);
				eof = errno == ECONNRESET;
			}
			break;
		}
		if (rc || eof || data.len >= (size_t)max)
			break;
		uint64_t now = now_ns();
		if (got)
			last = now;
		/* once the expected bytes are in (the exact end), only a settle window for a surplus */
		uint64_t quiet = expect > 0 && (long long)data.len >= expect && wait_ns > SETTLE_NS ? SETTLE_NS : wait_ns;
		if (now - last >= quiet || now >= hard)
			break;
		pump(s->fd, (int64_t)(last + quiet - now));
	}
	if (rc == 0) {
		jb_key(out, "data");
		jb_str(out, data.p ? data.p : "", data.len);
		jb_kint(out, "bytes", (long long)data.len);
		jb_kbool(out, "eof", eof);
	}
	jb_free(&data);
	return rc;
}

/* ---------- socket state read back (getsockname/getpeername, SO_*, TCP_INFO) ---------- */

static void put_addr(struct jbuf *out, const char *akey, const char *pkey, const struct sockaddr_storage *ss, bool ok)
{
	char a[INET6_ADDRSTRLEN] = "";
	int port = 0;
	if (ok && ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		port = ntohs(sin->sin_port);
	} else if (ok && ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		port = ntohs(sin6->sin6_port);
	}
	jb_kstr(out, akey, a);
	jb_kint(out, pkey, port);
}

int op_sock_info(struct req *r, struct jbuf *out)
{
	struct asock *s;
	if (req_sock(r, "sock", &s))
		return -1;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	bool ok = getsockname(s->fd, (struct sockaddr *)&ss, &sl) == 0;
	put_addr(out, "localAddr", "localPort", &ss, ok);
	sl = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	ok = getpeername(s->fd, (struct sockaddr *)&ss, &sl) == 0;
	put_addr(out, "remoteAddr", "remotePort", &ss, ok);
	int v = 0;
	socklen_t vl = sizeof(v);
	if (getsockopt(s->fd, SOL_SOCKET, SO_MARK, &v, &vl) < 0)
		return fail(errno, "sock %d: getsockopt SO_MARK", s->id);
	jb_kint(out, "mark", (unsigned int)v);
	vl = sizeof(v);
	if (getsockopt(s->fd, SOL_SOCKET, SO_PRIORITY, &v, &vl) < 0)
		return fail(errno, "sock %d: getsockopt SO_PRIORITY", s->id);
	jb_kint(out, "priority", v);
	if (s->kind != SK_TCP)
		return 0;
	struct tcp_info ti;
	memset(&ti, 0, sizeof(ti));
	vl = sizeof(ti);
	if (getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, &ti, &vl) < 0)
		return fail(errno, "sock %d: getsockopt TCP_INFO", s->id);
	char cc[32] = "";
	vl = sizeof(cc) - 1;
	if (getsockopt(s->fd, IPPROTO_TCP, TCP_CONGESTION, cc, &vl) < 0)
		cc[0] = '\0';
	jb_kint(out, "tcpState", ti.tcpi_state);
	jb_kint(out, "rcvSsthresh", ti.tcpi_rcv_ssthresh);
	jb_kint(out, "rcvSpace", ti.tcpi_rcv_space);
	jb_kint(out, "advmss", ti.tcpi_advmss);
	jb_kint(out, "sndMss", ti.tcpi_snd_mss);
	jb_kint(out, "rcvMss", ti.tcpi_rcv_mss);
	jb_kint(out, "sndCwnd", ti.tcpi_snd_cwnd);
	jb_kint(out, "rtoUs", ti.tcpi_rto);
	jb_kstr(out, "congestion", cc);
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
	if (strcmp(fam, "inet") == 0)
		cs.family = AF_INET;
	else if (strcmp(fam, "inet6") == 0)
		cs.family = AF_INET6;
	else
		return failx(EINVAL, "unknown family \"%s\" (inet or inet6)", fam);
	if (strcmp(type, "stream") == 0)
		cs.type = SOCK_STREAM;
	else if (strcmp(type, "dgram") == 0)
		cs.type = SOCK_DGRAM;
	else if (strcmp(type, "raw") == 0)
		cs.type = SOCK_RAW;
	else
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
