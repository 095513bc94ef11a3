/* bpf-agent: output that programs send to user space (ops events_open, events_read). See
 * PROTOCOL.md.
 *
 * A BPF_MAP_TYPE_RINGBUF (5.8) or a BPF_MAP_TYPE_PERF_EVENT_ARRAY (4.3) of a loaded object is
 * read through libbpf's ring_buffer or perf_buffer. A perf event array must be opened before the
 * programs write to it (bpf_perf_event_output finds no event on a CPU whose buffer is not open);
 * a ring buffer keeps records until read, and is opened on first read if need be. Readers are
 * closed with their object (unload, reset). Nothing here needs BTF. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define MAX_RECORDS 10000

struct reader {
	struct aobj *owner;
	char map[128];
	bool ring;
	struct ring_buffer *rb;
	struct perf_buffer *pb;
	struct jbuf *out;       /* where the callbacks write, during a read */
	long long got, lost;
	struct reader *next;
};

static struct reader *g_readers;

void events_release_obj(struct aobj *o)
{
	for (struct reader **pp = &g_readers; *pp;) {
		struct reader *r = *pp;
		if (!o || r->owner == o) {
			*pp = r->next;
			ring_buffer__free(r->rb);
			perf_buffer__free(r->pb);
			free(r);
		} else {
			pp = &r->next;
		}
	}
}

static void put_record(struct reader *r, int cpu, const void *data, size_t size)
{
	if (r->got >= MAX_RECORDS || !r->out)
		return;
	jb_puts(r->out, r->got ? ",{" : "{");
	if (cpu >= 0)
		jb_printf(r->out, "\"cpu\":%d,", cpu);
	jb_puts(r->out, "\"data\":");
	jb_hex(r->out, data, size);
	jb_putc(r->out, '}');
	r->got++;
}

static int ring_cb(void *ctx, void *data, size_t size)
{
	put_record(ctx, -1, data, size);
	return 0;
}

static void perf_cb(void *ctx, int cpu, void *data, __u32 size)
{
	put_record(ctx, cpu, data, size);
}

static void lost_cb(void *ctx, int cpu, __u64 cnt)
{
	(void)cpu;
	((struct reader *)ctx)->lost += (long long)cnt;
}

static struct reader *reader_get(const struct req *q, bool create)
{
	struct aobj *o;
	const char *name;
	if (req_obj(q, &o) || req_str(q, "map", &name, NULL))
		return NULL;
	for (struct reader *r = g_readers; r; r = r->next)
		if (r->owner == o && strcmp(r->map, name) == 0)
			return r;
	struct bpf_map *m = bpf_object__find_map_by_name(aobj_obj(o), name);
	if (!m || bpf_map__fd(m) < 0) {
		failx(ENOENT, "obj %s has no map \"%s\"", aobj_name(o), name);
		return NULL;
	}
	enum bpf_map_type t = bpf_map__type(m);
	if (t != BPF_MAP_TYPE_RINGBUF && t != BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
		failx(EINVAL, "map %s is a %s, not a ringbuf or perf_event_array", name, libbpf_bpf_map_type_str(t));
		return NULL;
	}
	if (!create && t == BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
		failx(ENOENT, "perf event array %s: open it (events_open) before the programs write to it", name);
		return NULL;
	}
	struct reader *r = calloc(1, sizeof(*r));
	if (!r) {
		fail(ENOMEM, "map %s", name);
		return NULL;
	}
	r->owner = o;
	snprintf(r->map, sizeof(r->map), "%s", name);
	r->ring = t == BPF_MAP_TYPE_RINGBUF;
	if (r->ring)
		r->rb = ring_buffer__new(bpf_map__fd(m), ring_cb, r, NULL);
	else
		r->pb = perf_buffer__new(bpf_map__fd(m), 8, perf_cb, lost_cb, r, NULL);
	if (!r->rb && !r->pb) {
		int e = errno;
		free(r);
		fail(e, "map %s: open the %s", name, t == BPF_MAP_TYPE_RINGBUF ? "ring buffer" : "perf buffer");
		return NULL;
	}
	r->next = g_readers;
	g_readers = r;
	return r;
}

int op_events_open(struct req *q, struct jbuf *out)
{
	(void)out;
	return reader_get(q, true) ? 0 : -1;
}

int op_events_read(struct req *q, struct jbuf *out)
{
	long long wait_ms, expect;
	if (req_int(q, "waitMs", &wait_ms, 200, false, 0, 60000) || req_int(q, "expect", &expect, -1, false, -1, MAX_RECORDS))
		return -1;
	struct reader *r = reader_get(q, false);
	if (!r)
		return -1;
	int efd = r->ring ? ring_buffer__epoll_fd(r->rb) : perf_buffer__epoll_fd(r->pb);
	r->got = 0;
	r->lost = 0;
	r->out = out;
	jb_key(out, "records");
	jb_putc(out, '[');
	for (;;) {
		int n = r->ring ? ring_buffer__consume(r->rb) : perf_buffer__consume(r->pb);
		if (n < 0) {
			r->out = NULL;
			jb_putc(out, ']');
			return fail(-n, "map %s: read", r->map);
		}
		uint64_t quiet = expect >= 0 && r->got >= expect ? SETTLE_NS : (uint64_t)wait_ms * 1000000ull;
		/* wait for more, counting statistics sockets meanwhile */
		if (!pump(efd, (int64_t)quiet))
			break;
	}
	/* what arrived during the last wait */
	if (r->ring)
		ring_buffer__consume(r->rb);
	else
		perf_buffer__consume(r->pb);
	r->out = NULL;
	jb_putc(out, ']');
	jb_kint(out, "lost", r->lost);
	return 0;
}
