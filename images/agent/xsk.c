/* bpf-agent: AF_XDP sockets (ops xsk_open, xsk_stats). See PROTOCOL.md.
 *
 * Debian 12's libbpf (1.1) no longer carries xsk.h, so the socket is set up by hand: a UMEM of
 * XSK_FRAMES frames, fill and completion rings, an RX ring, bound in copy mode to one queue of a
 * device, and put into an XSKMAP of a loaded object so that the object's XDP program can
 * redirect frames to it. Received frames are counted (and their lengths kept), and their buffers
 * go straight back to the fill ring. Kernels before 5.4 report ring offsets without the flags
 * field; both layouts are understood. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_xdp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

#define XSK_FRAMES 256
#define XSK_FRAME_SIZE 2048
#define XSK_RING 256

struct ring {
	uint32_t *producer, *consumer;
	void *desc;
	void *map;
	size_t map_len;
};

struct xsk {
	int id, fd;
	void *umem;
	struct ring fill, rx;
	struct rx_count got;   /* frames received */
	struct xsk *next;
};

static struct xsk *g_xsks;
static int g_next_xsk = 1;

static void xsk_free(struct xsk *x)
{
	if (x->fill.map)
		munmap(x->fill.map, x->fill.map_len);
	if (x->rx.map)
		munmap(x->rx.map, x->rx.map_len);
	if (x->fd >= 0)
		close(x->fd);
	if (x->umem)
		munmap(x->umem, (size_t)XSK_FRAMES * XSK_FRAME_SIZE);
	free(x);
}

void xsk_close_all(void)
{
	while (g_xsks) {
		struct xsk *x = g_xsks;
		g_xsks = x->next;
		xsk_free(x);
	}
}

/* The kernel's ring offsets, in the 5.4+ layout whatever the kernel speaks. */
static int ring_offsets(int fd, struct xdp_mmap_offsets *off)
{
	struct xdp_mmap_offsets buf;
	socklen_t len = sizeof(buf);
	memset(&buf, 0, sizeof(buf));
	if (getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, &buf, &len) < 0)
		return -1;
	if (len == sizeof(buf)) {
		*off = buf;
		return 0;
	}
	/* before 5.4: { producer, consumer, desc } per ring, rx, tx, fr, cr */
	uint64_t *v1 = (uint64_t *)&buf;
	memset(off, 0, sizeof(*off));
	struct xdp_ring_offset *rings[4] = { &off->rx, &off->tx, &off->fr, &off->cr };
	for (int i = 0; i < 4; i++) {
		rings[i]->producer = v1[i * 3 + 0];
		rings[i]->consumer = v1[i * 3 + 1];
		rings[i]->desc = v1[i * 3 + 2];
	}
	return 0;
}

static int ring_map(int fd, struct ring *r, const struct xdp_ring_offset *o, size_t entry, uint64_t pgoff)
{
	r->map_len = o->desc + XSK_RING * entry;
	r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, (off_t)pgoff);
	if (r->map == MAP_FAILED) {
		r->map = NULL;
		return -1;
	}
	r->producer = (uint32_t *)((char *)r->map + o->producer);
	r->consumer = (uint32_t *)((char *)r->map + o->consumer);
	r->desc = (char *)r->map + o->desc;
	return 0;
}

/* Hands frame buffers (UMEM offsets) to the kernel through the fill ring. */
static void fill_put(struct xsk *x, const uint64_t *addrs, int n)
{
	uint32_t prod = __atomic_load_n(x->fill.producer, __ATOMIC_RELAXED);
	uint64_t *ring = x->fill.desc;
	for (int i = 0; i < n; i++)
		ring[(prod + (uint32_t)i) & (XSK_RING - 1)] = addrs[i];
	__atomic_store_n(x->fill.producer, prod + (uint32_t)n, __ATOMIC_RELEASE);
}

/* Takes what the RX ring holds; returns how many frames. */
static int rx_drain(struct xsk *x)
{
	uint32_t cons = __atomic_load_n(x->rx.consumer, __ATOMIC_RELAXED);
	uint32_t prod = __atomic_load_n(x->rx.producer, __ATOMIC_ACQUIRE);
	struct xdp_desc *ring = x->rx.desc;
	uint64_t back[XSK_RING];
	int n = 0;
	for (; cons != prod && n < XSK_RING; cons++, n++) {
		struct xdp_desc *d = &ring[cons & (XSK_RING - 1)];
		rx_count_add(&x->got, d->len);
		/* copy mode hands back the chunk's base plus headroom: keep the chunk */
		back[n] = d->addr - d->addr % XSK_FRAME_SIZE;
	}
	__atomic_store_n(x->rx.consumer, cons, __ATOMIC_RELEASE);
	if (n)
		fill_put(x, back, n);
	return n;
}

int op_xsk_open(struct req *r, struct jbuf *out)
{
	const char *netns, *ifname, *mapname;
	long long queue, key;
	struct aobj *o;
	if (req_str(r, "netns", &netns, "") || req_str(r, "ifname", &ifname, NULL) ||
	    req_int(r, "queue", &queue, 0, false, 0, 1023) || req_obj(r, &o) || req_str(r, "map", &mapname, NULL) ||
	    req_int(r, "key", &key, -1, false, -1, 1023))
		return -1;
	struct bpf_map *m = bpf_object__find_map_by_name(aobj_obj(o), mapname);
	if (!m || bpf_map__fd(m) < 0)
		return failx(ENOENT, "obj %s has no map \"%s\"", aobj_name(o), mapname);
	if (ns_enter(netns))
		return -1;
	int rc = -1;
	struct xsk *x = calloc(1, sizeof(*x));
	if (!x) {
		fail(ENOMEM, "xsk");
		goto out;
	}
	x->fd = -1;
	unsigned int ifindex;
	if (ifindex_of(ifname, netns, NULL, &ifindex))
		goto bad;
	x->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (x->fd < 0) {
		fail(errno, "socket(AF_XDP)");
		goto bad;
	}
	x->umem = mmap(NULL, (size_t)XSK_FRAMES * XSK_FRAME_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (x->umem == MAP_FAILED) {
		x->umem = NULL;
		fail(errno, "UMEM");
		goto bad;
	}
	struct xdp_umem_reg mr;
	memset(&mr, 0, sizeof(mr));
	mr.addr = (uint64_t)(uintptr_t)x->umem;
	mr.len = (uint64_t)XSK_FRAMES * XSK_FRAME_SIZE;
	mr.chunk_size = XSK_FRAME_SIZE;
	/* older kernels take the first four fields only */
	if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &mr, sizeof(mr)) < 0 &&
	    setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &mr, 24) < 0) {
		fail(errno, "XDP_UMEM_REG");
		goto bad;
	}
	int n = XSK_RING;
	if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_FILL_RING, &n, sizeof(n)) < 0 ||
	    setsockopt(x->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &n, sizeof(n)) < 0 ||
	    setsockopt(x->fd, SOL_XDP, XDP_RX_RING, &n, sizeof(n)) < 0) {
		fail(errno, "ring sizes");
		goto bad;
	}
	struct xdp_mmap_offsets off;
	if (ring_offsets(x->fd, &off) < 0) {
		fail(errno, "XDP_MMAP_OFFSETS");
		goto bad;
	}
	if (ring_map(x->fd, &x->fill, &off.fr, sizeof(uint64_t), XDP_UMEM_PGOFF_FILL_RING) < 0 ||
	    ring_map(x->fd, &x->rx, &off.rx, sizeof(struct xdp_desc), XDP_PGOFF_RX_RING) < 0) {
		fail(errno, "mmap rings");
		goto bad;
	}
	uint64_t addrs[XSK_RING];
	for (int i = 0; i < XSK_RING; i++)
		addrs[i] = (uint64_t)i * XSK_FRAME_SIZE;
	fill_put(x, addrs, XSK_RING);
	struct sockaddr_xdp sx;
	memset(&sx, 0, sizeof(sx));
	sx.sxdp_family = AF_XDP;
	sx.sxdp_ifindex = ifindex;
	sx.sxdp_queue_id = (uint32_t)queue;
	sx.sxdp_flags = XDP_COPY;
	if (bind(x->fd, (struct sockaddr *)&sx, sizeof(sx)) < 0) {
		fail(errno, "bind AF_XDP to %s queue %lld in %s (copy mode)", ifname, queue, ns_label(netns));
		goto bad;
	}
	uint32_t k = (uint32_t)(key < 0 ? queue : key);
	int v = x->fd;
	if (bpf_map_update_elem(bpf_map__fd(m), &k, &v, BPF_ANY)) {
		fail(errno, "map %s: add the socket at key %u", mapname, k);
		goto bad;
	}
	x->id = g_next_xsk++;
	x->next = g_xsks;
	g_xsks = x;
	jb_kint(out, "sock", x->id);
	rc = 0;
	goto out;
bad:
	xsk_free(x);
out:
	ns_leave();
	return rc;
}

static int req_xsk(const struct req *r, struct xsk **out)
{
	long long id;
	if (req_int(r, "sock", &id, 0, true, 0, INT_MAX))
		return -1;
	for (struct xsk *x = g_xsks; x; x = x->next)
		if (x->id == id) {
			*out = x;
			return 0;
		}
	return failx(ENOENT, "unknown xsk %lld", id);
}

/* Frames received since the last call: reads until nothing new for waitMs (or, once `expect`
 * frames are in, for SETTLE_NS). */
int op_xsk_stats(struct req *r, struct jbuf *out)
{
	struct xsk *x = NULL;
	long long wait_ms, expect;
	if (req_xsk(r, &x) || req_int(r, "waitMs", &wait_ms, 200, false, 0, 60000) ||
	    req_int(r, "expect", &expect, -1, false, -1, 1000000))
		return -1;
	for (;;) {
		rx_drain(x);
		uint64_t quiet = expect >= 0 && x->got.n >= (uint64_t)expect ? SETTLE_NS : (uint64_t)wait_ms * 1000000ull;
		if (!pump(x->fd, (int64_t)quiet))
			break;
	}
	rx_drain(x);
	rx_count_put(out, &x->got, "frames");
	return 0;
}
