/* bpf-agent: the socket table: counting packets in the background, and reading and writing its sockets. */
#define _GNU_SOURCE
#include "socks.h"

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
#include <time.h>
#include <unistd.h>

uint8_t g_rx[RX_BUF_SIZE];

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

static struct asock *g_socks;
static int g_next_sock = 1;

struct asock *sock_add(int fd, enum skind kind)
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

int req_sock(const struct req *r, const char *key, struct asock **out)
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

void rx_count_add(struct rx_count *c, uint32_t len)
{
	c->n++;
	c->bytes += len;
	if (c->nlen < MAX_LENGTHS)
		c->lengths[c->nlen++] = len;
}

void rx_count_put(struct jbuf *out, struct rx_count *c, const char *what)
{
	jb_kint(out, what, (long long)c->n);
	jb_kint(out, "bytes", (long long)c->bytes);
	jb_ku32s(out, "lengths", c->lengths, c->nlen);
	c->n = c->bytes = 0;
	c->nlen = 0;
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
		rx_count_add(&s->rx, (uint32_t)n);
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

void set_rcvbuf(int fd, int bytes)
{
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
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
		uint64_t quiet = expect > 0 && (long long)s->rx.n >= expect && wait_ns > SETTLE_NS ? SETTLE_NS : wait_ns;
		if (now - last >= quiet || now >= hard)
			break;
		uint64_t before = s->rx.n;
		pump(-1, (int64_t)(last + quiet - now));
		if (s->rx.n != before)
			last = now_ns();
	}
	rx_count_put(out, &s->rx, "packets");
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

