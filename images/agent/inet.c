/* bpf-agent: plain inet sockets whose every address the kernel decides is reported back (ops
 * inet_socket, inet_connect, inet_send, inet_recv). See PROTOCOL.md.
 *
 * For the hooks that rewrite addresses (cgroup sock_addr: bind, connect, sendmsg, recvmsg): a
 * socket created inside a cgroup carries that cgroup, so its bind, connect, sendto and recvfrom
 * run the cgroup's programs whichever process makes them. bind and connect errors are results
 * (bindErrno, connectErrno), not failures: a refusal is what some tests look for. */
#define _GNU_SOURCE
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

struct isock {
	int id;
	int fd;
	bool tcp, listening;
	struct isock *next;
};

static struct isock *g_isocks;
static int g_next_isock = 1;

void inet_socks_close_all(void)
{
	while (g_isocks) {
		struct isock *s = g_isocks;
		g_isocks = s->next;
		close(s->fd);
		free(s);
	}
}

static int req_isock(const struct req *r, struct isock **out)
{
	long long id;
	*out = NULL;
	if (req_int(r, "sock", &id, 0, true, 0, INT_MAX))
		return -1;
	for (struct isock *s = g_isocks; s; s = s->next)
		if (s->id == id) {
			*out = s;
			return 0;
		}
	return failx(ENOENT, "unknown inet sock %lld", id);
}

static void put_sockaddr(struct jbuf *out, const char *akey, const char *pkey, const struct sockaddr_in *sin)
{
	char a[INET_ADDRSTRLEN] = "";
	inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
	jb_kstr(out, akey, a);
	jb_kint(out, pkey, ntohs(sin->sin_port));
}

/* localAddr/localPort (getsockname) and remoteAddr/remotePort (getpeername; ""/0 if none). */
static void put_names(struct jbuf *out, int fd)
{
	struct sockaddr_in me, peer;
	socklen_t ml = sizeof(me), pl = sizeof(peer);
	memset(&me, 0, sizeof(me));
	memset(&peer, 0, sizeof(peer));
	getsockname(fd, (struct sockaddr *)&me, &ml);
	put_sockaddr(out, "localAddr", "localPort", &me);
	if (getpeername(fd, (struct sockaddr *)&peer, &pl) == 0) {
		put_sockaddr(out, "remoteAddr", "remotePort", &peer);
	} else {
		jb_kstr(out, "remoteAddr", "");
		jb_kint(out, "remotePort", 0);
	}
	/* TCP: the congestion control the socket has */
	char cc[32] = "";
	socklen_t cl = sizeof(cc) - 1;
	if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, &cl) == 0)
		jb_kstr(out, "congestion", cc);
}

struct ispec {
	bool tcp, bind, listen, reuseport;
	const char *congestion;   /* TCP_CONGESTION before bind/connect, or NULL */
	int cc_errno;             /* its errno (a result, not a failure) */
	struct sockaddr_in addr;
};

static int make_isock(struct ispec *sp, int *fd_out, int *bind_errno)
{
	int fd = socket(AF_INET, (sp->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(errno, "socket(AF_INET, %s)", sp->tcp ? "SOCK_STREAM" : "SOCK_DGRAM");
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sp->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		int e = errno;
		close(fd);
		return fail(e, "SO_REUSEPORT");
	}
	struct timeval tv = { .tv_sec = 3 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	*bind_errno = 0;
	sp->cc_errno = 0;
	if (sp->congestion && setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, sp->congestion, (socklen_t)strlen(sp->congestion)) < 0)
		sp->cc_errno = errno;
	if (sp->bind && bind(fd, (struct sockaddr *)&sp->addr, sizeof(sp->addr)) < 0)
		*bind_errno = errno;
	if (sp->listen && !*bind_errno && listen(fd, 128) < 0) {
		int e = errno;
		close(fd);
		return fail(e, "listen");
	}
	*fd_out = fd;
	return 0;
}

static int child_isock(void *arg, struct child_res *res, int *fds, int maxfds)
{
	int be;
	if (maxfds < 1)
		return failx(EINVAL, "internal: no room for fds");
	if (make_isock(arg, &fds[0], &be))
		return -1;
	res->v[0] = be;
	res->v[1] = ((struct ispec *)arg)->cc_errno;
	res->nfds = 1;
	return 0;
}

int op_inet_socket(struct req *r, struct jbuf *out)
{
	const char *netns, *cgroup, *proto, *addr;
	long long port;
	struct ispec sp;
	memset(&sp, 0, sizeof(sp));
	if (req_str(r, "netns", &netns, "") || req_str_opt(r, "cgroup", &cgroup) || req_str(r, "proto", &proto, "udp") ||
	    req_str_opt(r, "addr", &addr) || req_int(r, "port", &port, -1, false, -1, 65535) ||
	    req_bool(r, "listen", &sp.listen, false) || req_bool(r, "reuseport", &sp.reuseport, false) ||
	    req_str_opt(r, "congestion", &sp.congestion))
		return -1;
	if (strcmp(proto, "udp") && strcmp(proto, "tcp"))
		return failx(EINVAL, "proto \"%s\": udp or tcp", proto);
	sp.tcp = strcmp(proto, "tcp") == 0;
	sp.addr.sin_family = AF_INET;
	if (addr && req_ip4(r, "addr", &sp.addr.sin_addr, NULL))
		return -1;
	sp.bind = addr || port >= 0;
	sp.addr.sin_port = htons((uint16_t)(port < 0 ? 0 : port));
	if (sp.listen && !sp.tcp)
		return failx(EINVAL, "listen: tcp only");
	if (ns_enter(netns))
		return -1;
	int fd = -1, be = 0, rc;
	if (cgroup && *cgroup) {
		struct child_res res;
		rc = run_in_cgroup(cgroup, child_isock, &sp, &res, &fd, 1, 10 * 1000000000ll);
		if (rc == 0 && res.nfds != 1)
			rc = failx(EIO, "helper child returned no socket");
		be = (int)res.v[0];
		sp.cc_errno = (int)res.v[1];
	} else {
		rc = make_isock(&sp, &fd, &be);
	}
	ns_leave();
	if (rc)
		return -1;
	struct isock *s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return fail(ENOMEM, "socket table");
	}
	s->id = g_next_isock++;
	s->fd = fd;
	s->tcp = sp.tcp;
	s->listening = sp.listen && !be;
	s->next = g_isocks;
	g_isocks = s;
	jb_kint(out, "sock", s->id);
	jb_kint(out, "bindErrno", be);
	if (sp.congestion)
		jb_kint(out, "congestionErrno", sp.cc_errno);
	put_names(out, fd);
	return 0;
}

int op_inet_connect(struct req *r, struct jbuf *out)
{
	struct isock *s;
	struct sockaddr_in to;
	long long port, timeout_ms;
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	if (req_isock(r, &s) || req_ip4(r, "dst", &to.sin_addr, NULL) || req_int(r, "dport", &port, 0, true, 0, 65535) ||
	    req_int(r, "timeoutMs", &timeout_ms, 3000, false, 1, 60000))
		return -1;
	to.sin_port = htons((uint16_t)port);
	/* A blocking connect gives up after timeoutMs (SO_SNDTIMEO) with EINPROGRESS, the SYN still out. */
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int e = connect(s->fd, (struct sockaddr *)&to, sizeof(to)) < 0 ? errno : 0;
	jb_kint(out, "connectErrno", e);
	put_names(out, s->fd);
	return 0;
}

int op_inet_send(struct req *r, struct jbuf *out)
{
	struct isock *s;
	const char *data, *dst;
	size_t len;
	long long count, port;
	struct sockaddr_in to;
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	if (req_isock(r, &s) || req_bytes(r, "data", &data, &len) || req_int(r, "count", &count, 1, false, 1, 100000) ||
	    req_str_opt(r, "dst", &dst) || req_int(r, "dport", &port, 0, false, 0, 65535))
		return -1;
	if (dst && req_ip4(r, "dst", &to.sin_addr, NULL))
		return -1;
	to.sin_port = htons((uint16_t)port);
	long long sent = 0, bytes = 0;
	int last = 0;
	for (long long i = 0; i < count; i++) {
		ssize_t w = dst ? sendto(s->fd, data, len, 0, (struct sockaddr *)&to, sizeof(to)) : send(s->fd, data, len, 0);
		if (w < 0) {
			last = errno;
			continue;
		}
		sent++;
		bytes += w;
	}
	jb_kint(out, "sent", sent);
	jb_kint(out, "bytes", bytes);
	jb_kint(out, "sendErrno", last);
	put_names(out, s->fd);
	return 0;
}

/* Waits (counting statistics sockets meanwhile) until fd is readable or the deadline passes. */
static bool wait_readable(int fd, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 0) > 0)
			return true;
		uint64_t now = now_ns();
		if (now >= deadline)
			return false;
		if (pump(fd, (int64_t)(deadline - now)))
			return true;
	}
}

static void put_message(struct jbuf *out, bool *first, const struct sockaddr_in *from, const char *data, size_t n)
{
	char a[INET_ADDRSTRLEN] = "";
	inet_ntop(AF_INET, &from->sin_addr, a, sizeof(a));
	jb_puts(out, *first ? "{\"addr\":" : ",{\"addr\":");
	*first = false;
	jb_cstr(out, a);
	jb_printf(out, ",\"port\":%u,\"data\":", ntohs(from->sin_port));
	jb_str(out, data, n);
	jb_putc(out, '}');
}

/*
 * UDP: every datagram, with the source address recvfrom reports. A TCP listener: every
 * connection it accepts, with the peer address and what the peer wrote. A connected TCP socket:
 * what arrived, as one message from the peer. Reads until nothing new for waitMs, or, once
 * `expect` messages are in, until nothing new for SETTLE_NS.
 */
int op_inet_recv(struct req *r, struct jbuf *out)
{
	struct isock *s;
	long long wait_ms, expect;
	if (req_isock(r, &s) || req_int(r, "waitMs", &wait_ms, 200, false, 0, 60000) ||
	    req_int(r, "expect", &expect, -1, false, -1, 100000))
		return -1;
	static char buf[65536];
	jb_key(out, "messages");
	jb_putc(out, '[');
	bool first = true;
	long long got = 0;
	for (;;) {
		uint64_t quiet = expect >= 0 && got >= expect ? SETTLE_NS : (uint64_t)wait_ms * 1000000ull;
		if (!wait_readable(s->fd, now_ns() + quiet))
			break;
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		memset(&from, 0, sizeof(from));
		if (!s->tcp) {
			ssize_t n = recvfrom(s->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
			if (n < 0)
				continue;
			put_message(out, &first, &from, buf, (size_t)n);
		} else if (s->listening) {
			int c = accept4(s->fd, (struct sockaddr *)&from, &fl, SOCK_CLOEXEC);
			if (c < 0)
				continue;
			/* what the peer wrote before closing, or within waitMs */
			size_t have = 0;
			uint64_t until = now_ns() + (uint64_t)wait_ms * 1000000ull;
			while (have < sizeof(buf) && wait_readable(c, until)) {
				ssize_t n = recv(c, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
				if (n <= 0)
					break;
				have += (size_t)n;
			}
			close(c);
			put_message(out, &first, &from, buf, have);
		} else {
			ssize_t n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n <= 0)
				break;
			getpeername(s->fd, (struct sockaddr *)&from, &fl);
			put_message(out, &first, &from, buf, (size_t)n);
		}
		got++;
	}
	jb_putc(out, ']');
	return 0;
}

int op_inet_close(struct req *r, struct jbuf *out)
{
	(void)out;
	struct isock *s;
	if (req_isock(r, &s))
		return -1;
	for (struct isock **pp = &g_isocks; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	close(s->fd);
	free(s);
	return 0;
}

/* Puts an inet socket into a sockmap or sockhash of a loaded object (value: the socket's fd). */
int op_inet_sockmap_add(struct req *r, struct jbuf *out)
{
	(void)out;
	struct aobj *o;
	struct isock *s;
	const char *name;
	long long key;
	if (req_obj(r, &o) || req_str(r, "map", &name, NULL) || req_int(r, "key", &key, 0, true, 0, 0xffffffffll) ||
	    req_isock(r, &s))
		return -1;
	struct bpf_map *m = bpf_object__find_map_by_name(aobj_obj(o), name);
	if (!m || bpf_map__fd(m) < 0)
		return failx(ENOENT, "obj %s has no map \"%s\"", aobj_name(o), name);
	if (map_put_sock(m, key, s->fd))
		return fail(errno, "map %s: add inet sock %d at key %lld", name, s->id, key);
	return 0;
}

#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif

/* An sk_reuseport program (4.19) on the reuseport group of an inet socket (SO_ATTACH_REUSEPORT_EBPF). */
int op_inet_attach_reuseport(struct req *r, struct jbuf *out)
{
	(void)out;
	struct aobj *o;
	struct bpf_program *p;
	struct isock *s;
	int pfd;
	if (req_obj(r, &o) || req_prog(r, o, &p, &pfd) || req_isock(r, &s))
		return -1;
	if (setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &pfd, sizeof(pfd)) < 0)
		return fail(errno, "prog %s: SO_ATTACH_REUSEPORT_EBPF on inet sock %d", bpf_program__name(p), s->id);
	return 0;
}
