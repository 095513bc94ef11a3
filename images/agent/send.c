/* bpf-agent: traffic: the send op's ICMP echoes, UDP datagrams and TCP SYNs, and the replies they get. */
#define _GNU_SOURCE
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_RAW
#define SOL_RAW 255
#endif
#ifndef ICMP_FILTER
#define ICMP_FILTER 1
#endif

enum sproto { P_ICMP, P_UDP, P_TCP };

struct send_params {
	enum sproto proto;
	bool has_src;
	struct in_addr src, dst;
	long long count, size, sport, dport, wait_ms, interval_us;
	const char *netns;
	/* The exact end, when the request names one: the program's own count of the packets it
	 * judged, and the count that means it judged every one. */
	struct map_counter *judged;
	long long judged_count;
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

	/* collect replies until none arrived for waitMs (bounded: waitMs + 10 s). The exact ends:
	 * nothing left (no reply can come), or every packet sent has its reply, or the program
	 * judged every packet (polled every 5 ms); from then on only until none arrived for
	 * SETTLE_MS, which still catches a surplus. */
	uint64_t wait_ns = (uint64_t)sp.wait_ms * 1000000ull;
	uint64_t last = now_ns(), hard = last + wait_ns + 10000000000ull;
	bool judged = false;
	collect(&sp, rfd, res, icmp_id);
	while (res->sent) {
		uint64_t now = now_ns();
		if (sp.judged && !judged) {
			uint64_t v;
			if (map_counter_read(sp.judged, &v))
				goto out;
			if (v >= (uint64_t)sp.judged_count) {
				judged = true;
				last = now; /* the settle window starts when the verdicts are all in */
			}
		}
		bool exact = res->replies >= res->sent || judged;
		uint64_t quiet = exact && wait_ns > SETTLE_NS ? SETTLE_NS : wait_ns;
		if (now - last >= quiet || now >= hard)
			break;
		uint64_t slice = last + quiet - now;
		if (sp.judged && !judged && slice > 5000000ull)
			slice = 5000000ull;
		if (pump(rfd, (int64_t)slice) && collect(&sp, rfd, res, icmp_id) > 0)
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
	static const char *const protos[] = { "icmp", "udp", "tcp", NULL };
	static const int values[] = { P_ICMP, P_UDP, P_TCP };
	int pv;
	if (str_pick(proto, protos, values, &pv))
		return failx(EINVAL, "unknown proto \"%s\" (icmp, udp or tcp)", proto);
	sp.proto = (enum sproto)pv;
	/* UDP has no replies unless a program echoes the datagrams: collect them only when asked */
	if (req_int(r, "waitMs", &sp.wait_ms, sp.proto == P_UDP ? 0 : 300, false, 0, 3600000))
		return -1;
	long long maxsize = sp.proto == P_TCP ? 65535 - 40 : 65507;
	if (req_int(r, "size", &sp.size, 32, false, sp.proto == P_TCP ? 0 : 0, maxsize))
		return -1;
	if (parse_ip4("dst", dst, &sp.dst))
		return -1;
	if (req_int(r, "judged", &sp.judged_count, -1, false, 0, 10000000))
		return -1;
	if (sp.judged_count >= 0 && !(sp.judged = map_counter_open(r)))
		return -1;
	if (src && *src) {
		if (parse_ip4("src", src, &sp.src))
			return -1;
		sp.has_src = true;
	}
	if (ns_enter(sp.netns)) {
		map_counter_free(sp.judged);
		return -1;
	}
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
	map_counter_free(sp.judged);
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

