/* bpf-agent: map access: lookup, update, delete and dump, in a loaded object or pinned in bpffs. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static bool map_is_percpu(enum bpf_map_type t)
{
	return t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       t == BPF_MAP_TYPE_LRU_PERCPU_HASH || t == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

struct mapctx {
	struct aobj *o;
	struct bpf_map *m;
	const char *name;
	int fd;
	uint32_t ks, vs;
	bool percpu;
	int ncpus;
	size_t vbuf;        /* size of a value buffer for lookup */
};

/*
 * Maps pinned in bpffs by another loader (tc, ip) are opened by path and kept open until
 * `reset`: a request names them with "pin" instead of "obj" + "map".
 */
#define MAX_PINNED 64
static struct pinned {
	char path[256];
	int fd;
	struct bpf_map_info info;
} g_pinned[MAX_PINNED];
static int g_npinned;

static struct pinned *pinned_open(const char *path)
{
	for (int i = 0; i < g_npinned; i++)
		if (strcmp(g_pinned[i].path, path) == 0)
			return &g_pinned[i];
	if (g_npinned == MAX_PINNED) {
		failx(EMFILE, "more than %d pinned maps open; send reset", MAX_PINNED);
		return NULL;
	}
	if (strlen(path) >= sizeof(g_pinned[0].path)) {
		failx(ENAMETOOLONG, "pin %s: path too long", path);
		return NULL;
	}
	struct pinned *p = &g_pinned[g_npinned];
	memset(p, 0, sizeof(*p));
	p->fd = bpf_obj_get(path);
	if (p->fd < 0) {
		fail(errno, "pin %s: bpf_obj_get", path);
		return NULL;
	}
	uint32_t len = sizeof(p->info);
	if (bpf_obj_get_info_by_fd(p->fd, &p->info, &len)) {
		fail(errno, "pin %s: not a map, or no map info", path);
		close(p->fd);
		return NULL;
	}
	snprintf(p->path, sizeof(p->path), "%s", path);
	g_npinned++;
	return p;
}

void pinned_close_all(void)
{
	for (int i = 0; i < g_npinned; i++)
		close(g_pinned[i].fd);
	g_npinned = 0;
}

static int req_mapctx(const struct req *r, struct mapctx *c)
{
	const char *pin = NULL;
	memset(c, 0, sizeof(*c));
	if (req_str_opt(r, "pin", &pin))
		return -1;
	if (pin) {
		struct pinned *p = pinned_open(pin);
		if (!p)
			return -1;
		c->name = p->path;
		c->fd = p->fd;
		c->ks = p->info.key_size;
		c->vs = p->info.value_size;
		c->percpu = map_is_percpu(p->info.type);
	} else {
		if (req_obj(r, &c->o) || req_map(r, c->o, "map", &c->m))
			return -1;
		c->name = bpf_map__name(c->m);
		c->fd = bpf_map__fd(c->m);
		c->ks = bpf_map__key_size(c->m);
		c->vs = bpf_map__value_size(c->m);
		c->percpu = map_is_percpu(bpf_map__type(c->m));
	}
	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus < 1)
		c->ncpus = 1;
	c->vbuf = c->percpu ? (size_t)c->ncpus * ((c->vs + 7) / 8 * 8) : c->vs;
	if (c->vbuf == 0)
		c->vbuf = 1;
	return 0;
}

static int map_key(const struct req *r, struct mapctx *c, uint8_t **key)
{
	size_t n = 0;
	if (req_hex(r, "key", key, &n))
		return -1;
	if (n != c->ks) {
		free(*key);
		*key = NULL;
		return failx(EINVAL, "map %s: key is %zu bytes, key_size is %u", c->name, n, c->ks);
	}
	return 0;
}

static void put_value(struct jbuf *out, struct mapctx *c, const uint8_t *val, bool found)
{
	if (!c->percpu) {
		jb_key(out, "value");
		if (found)
			jb_hex(out, val, c->vs);
		else
			jb_puts(out, "null");
		return;
	}
	jb_kstr(out, "value", NULL);
	if (!found)
		return;
	size_t stride = (c->vs + 7) / 8 * 8;
	jb_key(out, "values");
	jb_putc(out, '[');
	for (int i = 0; i < c->ncpus; i++) {
		if (i)
			jb_putc(out, ',');
		jb_hex(out, val + (size_t)i * stride, c->vs);
	}
	jb_putc(out, ']');
}

struct map_counter {
	struct mapctx c;
	uint8_t *key;
	uint8_t *val;
};

struct map_counter *map_counter_open(const struct req *r)
{
	struct map_counter *k = calloc(1, sizeof(*k));
	if (!k) {
		fail(ENOMEM, "map counter");
		return NULL;
	}
	if (req_mapctx(r, &k->c) || map_key(r, &k->c, &k->key))
		goto bad;
	if (k->c.vs < 4) {
		failx(EINVAL, "map %s: a %u-byte value holds no count", k->c.name, k->c.vs);
		goto bad;
	}
	k->val = calloc(1, k->c.vbuf);
	if (!k->val) {
		fail(ENOMEM, "map counter");
		goto bad;
	}
	return k;
bad:
	map_counter_free(k);
	return NULL;
}

int map_counter_read(const struct map_counter *k, uint64_t *v)
{
	*v = 0;
	if (bpf_map_lookup_elem(k->c.fd, k->key, k->val)) {
		if (errno == ENOENT)
			return 0;
		return fail(errno, "map %s: lookup", k->c.name);
	}
	size_t stride = k->c.percpu ? (k->c.vs + 7) / 8 * 8 : k->c.vs;
	int n = k->c.percpu ? k->c.ncpus : 1;
	for (int i = 0; i < n; i++) {
		const uint8_t *p = k->val + (size_t)i * stride;
		if (k->c.vs >= 8) {
			uint64_t x;
			memcpy(&x, p, 8);
			*v += x;
		} else {
			uint32_t x;
			memcpy(&x, p, 4);
			*v += x;
		}
	}
	return 0;
}

void map_counter_free(struct map_counter *k)
{
	if (!k)
		return;
	free(k->key);
	free(k->val);
	free(k);
}

int op_map_lookup(struct req *r, struct jbuf *out)
{
	struct mapctx c;
	uint8_t *key = NULL;
	if (req_mapctx(r, &c) || map_key(r, &c, &key))
		return -1;
	uint8_t *val = calloc(1, c.vbuf);
	int rc = 0;
	if (!val) {
		free(key);
		return fail(ENOMEM, "map %s", c.name);
	}
	if (bpf_map_lookup_elem(c.fd, key, val) == 0) {
		put_value(out, &c, val, true);
	} else if (errno == ENOENT) {
		put_value(out, &c, val, false);
	} else {
		rc = fail(errno, "map %s: lookup", c.name);
	}
	free(key);
	free(val);
	return rc;
}

int op_map_update(struct req *r, struct jbuf *out)
{
	(void)out;
	struct mapctx c;
	uint8_t *key = NULL, *val = NULL, *buf = NULL;
	size_t vn;
	long long flags;
	const char *netns;
	if (req_mapctx(r, &c) || req_int(r, "flags", &flags, BPF_ANY, false, 0, 0xffffffffll) ||
	    req_str(r, "netns", &netns, "") || map_key(r, &c, &key))
		return -1;
	if (req_hex(r, "value", &val, &vn)) {
		free(key);
		return -1;
	}
	int rc = 0;
	const void *v = val;
	if (c.percpu) {
		size_t stride = (c.vs + 7) / 8 * 8;
		buf = calloc(1, c.vbuf);
		if (!buf) {
			rc = fail(ENOMEM, "map %s", c.name);
			goto out;
		}
		if (vn == c.vs) {
			for (int i = 0; i < c.ncpus; i++)
				memcpy(buf + (size_t)i * stride, val, c.vs);
		} else if (vn == (size_t)c.ncpus * c.vs) {
			for (int i = 0; i < c.ncpus; i++)
				memcpy(buf + (size_t)i * stride, val + (size_t)i * c.vs, c.vs);
		} else if (vn == c.vbuf) {
			memcpy(buf, val, vn);
		} else {
			rc = failx(EINVAL, "map %s: per-CPU value is %zu bytes; give value_size %u (same on every CPU) or %d x %u bytes",
				   c.name, vn, c.vs, c.ncpus, c.vs);
			goto out;
		}
		v = buf;
	} else if (vn != c.vs) {
		rc = failx(EINVAL, "map %s: value is %zu bytes, value_size is %u", c.name, vn, c.vs);
		goto out;
	}
	/* A devmap (and the like) resolves the ifindex in the updater's network namespace. */
	if (ns_enter(netns)) {
		rc = -1;
		goto out;
	}
	if (bpf_map_update_elem(c.fd, key, v, (uint64_t)flags))
		rc = fail(errno, "map %s: update in %s", c.name, ns_label(netns));
	ns_leave();
out:
	free(key);
	free(val);
	free(buf);
	return rc;
}

int op_map_delete(struct req *r, struct jbuf *out)
{
	(void)out;
	struct mapctx c;
	uint8_t *key = NULL;
	if (req_mapctx(r, &c) || map_key(r, &c, &key))
		return -1;
	int rc = 0;
	if (bpf_map_delete_elem(c.fd, key))
		rc = fail(errno, "map %s: delete", c.name);
	free(key);
	return rc;
}

int op_map_dump(struct req *r, struct jbuf *out)
{
	struct mapctx c;
	if (req_mapctx(r, &c))
		return -1;
	size_t kmax = c.ks ? c.ks : 1;
	uint8_t *key = calloc(1, kmax), *next = calloc(1, kmax), *val = calloc(1, c.vbuf);
	int rc = 0;
	if (!key || !next || !val) {
		rc = fail(ENOMEM, "map %s", c.name);
		goto out;
	}
	size_t start = out->len;
	jb_key(out, "entries");
	jb_putc(out, '[');
	bool first = true, have = false;
	long guard = 0;
	for (;;) {
		if (bpf_map_get_next_key(c.fd, have ? key : NULL, next)) {
			if (errno == ENOENT)
				break;
			out->len = start;
			rc = fail(errno, "map %s: get_next_key", c.name);
			goto out;
		}
		memcpy(key, next, c.ks);
		have = true;
		if (++guard > 100000000)
			break;
		if (bpf_map_lookup_elem(c.fd, key, val)) {
			if (errno == ENOENT)
				continue;
			out->len = start;
			rc = fail(errno, "map %s: lookup", c.name);
			goto out;
		}
		jb_puts(out, first ? "{\"key\":" : ",{\"key\":");
		first = false;
		jb_hex(out, key, c.ks);
		if (c.percpu) {
			size_t stride = (c.vs + 7) / 8 * 8;
			jb_puts(out, ",\"values\":[");
			for (int i = 0; i < c.ncpus; i++) {
				if (i)
					jb_putc(out, ',');
				jb_hex(out, val + (size_t)i * stride, c.vs);
			}
			jb_puts(out, "]}");
		} else {
			jb_puts(out, ",\"value\":");
			jb_hex(out, val, c.vs);
			jb_putc(out, '}');
		}
	}
	jb_putc(out, ']');
out:
	if (out->p)
		out->p[out->len] = '\0';
	free(key);
	free(next);
	free(val);
	return rc;
}


int map_put_sock(struct bpf_map *m, long long key, int fd)
{
	/* little endian: the low bytes first */
	uint64_t kv = (uint64_t)key, fv = (uint64_t)(unsigned int)fd;
	uint8_t k[8] = { 0 }, v[8] = { 0 };
	memcpy(k, &kv, bpf_map__key_size(m) == 8 ? 8 : 4);
	memcpy(v, &fv, bpf_map__value_size(m) == 8 ? 8 : 4);
	return bpf_map_update_elem(bpf_map__fd(m), k, v, BPF_ANY);
}
