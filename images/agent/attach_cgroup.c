/* bpf-agent: BPF_PROG_ATTACH attachments on a cgroup or a sockmap (no link: they stay until detached). */
#define _GNU_SOURCE
#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* An attachment the agent made, to detach when its object goes. */
struct cg_rec {
	struct aobj *owner;
	int prog_fd;
	int target_fd;
	bool own_target;    /* target_fd is a cgroup dir fd we opened */
	enum bpf_attach_type type;
	struct cg_rec *next;
};

static struct cg_rec *g_cg;

static void cg_rec_free(struct cg_rec *c)
{
	if (c->own_target)
		close(c->target_fd);
	free(c);
}

void cgroup_release_obj(struct aobj *o, bool detach_persistent)
{
	for (struct cg_rec **pc = &g_cg; *pc;) {
		struct cg_rec *c = *pc;
		if (c->owner == o) {
			if (detach_persistent)
				bpf_prog_detach2(c->prog_fd, c->target_fd, c->type);
			*pc = c->next;
			cg_rec_free(c);
		} else {
			pc = &c->next;
		}
	}
}

static const struct {
	const char *name;
	enum bpf_attach_type type;
	bool map_target;
} g_attach_types[] = {
	{ "cgroup_inet_ingress", BPF_CGROUP_INET_INGRESS, false },
	{ "cgroup_inet_egress", BPF_CGROUP_INET_EGRESS, false },
	{ "cgroup_inet_sock_create", BPF_CGROUP_INET_SOCK_CREATE, false },
	{ "cgroup_sock_ops", BPF_CGROUP_SOCK_OPS, false },
	{ "sk_skb_stream_verdict", BPF_SK_SKB_STREAM_VERDICT, true },
	{ "sk_skb_stream_parser", BPF_SK_SKB_STREAM_PARSER, true },
	{ "sk_msg_verdict", BPF_SK_MSG_VERDICT, true },
	/* cgroup sock_addr hooks (4.17; recvmsg 5.2) */
	{ "cgroup_inet4_bind", BPF_CGROUP_INET4_BIND, false },
	{ "cgroup_inet6_bind", BPF_CGROUP_INET6_BIND, false },
	{ "cgroup_inet4_connect", BPF_CGROUP_INET4_CONNECT, false },
	{ "cgroup_inet6_connect", BPF_CGROUP_INET6_CONNECT, false },
	{ "cgroup_udp4_sendmsg", BPF_CGROUP_UDP4_SENDMSG, false },
	{ "cgroup_udp6_sendmsg", BPF_CGROUP_UDP6_SENDMSG, false },
	{ "cgroup_udp4_recvmsg", BPF_CGROUP_UDP4_RECVMSG, false },
	{ "cgroup_udp6_recvmsg", BPF_CGROUP_UDP6_RECVMSG, false },
};

struct cgctx {
	struct attach a;
	enum bpf_attach_type type;
	bool map_target;
	const char *target;   /* cgroup path or map name */
	int target_fd;
	bool own_fd;
	long long flags;
};

static int req_cgctx(const struct req *r, struct cgctx *c)
{
	memset(c, 0, sizeof(*c));
	c->target_fd = -1;
	const char *at;
	if (req_attach(r, &c->a) || req_str(r, "attachType", &at, NULL) ||
	    req_int(r, "flags", &c->flags, 0, false, 0, 0xffffffffll))
		return -1;
	size_t i;
	for (i = 0; i < sizeof(g_attach_types) / sizeof(g_attach_types[0]); i++)
		if (strcmp(g_attach_types[i].name, at) == 0)
			break;
	if (i == sizeof(g_attach_types) / sizeof(g_attach_types[0]))
		return failx(EINVAL, "unknown attachType \"%s\"", at);
	c->type = g_attach_types[i].type;
	c->map_target = g_attach_types[i].map_target;
	if (c->map_target) {
		struct bpf_map *m;
		if (req_map(r, c->a.o, "map", &m))
			return -1;
		c->target = bpf_map__name(m);
		c->target_fd = bpf_map__fd(m);
	} else {
		if (req_str(r, "cgroup", &c->target, NULL))
			return -1;
		c->target_fd = open(c->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->target_fd < 0)
			return fail(errno, "prog %s: open cgroup %s", c->a.prog, c->target);
		c->own_fd = true;
	}
	return 0;
}

int op_attach_cgroup(struct req *r, struct jbuf *out)
{
	(void)out;
	struct cgctx c;
	if (req_cgctx(r, &c))
		return -1;
	if (bpf_prog_attach(c.a.fd, c.target_fd, c.type, (unsigned int)c.flags)) {
		int e = errno;
		if (c.own_fd)
			close(c.target_fd);
		return fail(e, "prog %s: attach to %s %s", c.a.prog, c.map_target ? "map" : "cgroup", c.target);
	}
	struct cg_rec *rec = calloc(1, sizeof(*rec));
	if (!rec) {
		if (c.own_fd)
			close(c.target_fd);
		return 0;
	}
	rec->owner = c.a.o;
	rec->prog_fd = c.a.fd;
	rec->target_fd = c.target_fd;
	rec->own_target = c.own_fd;
	rec->type = c.type;
	rec->next = g_cg;
	g_cg = rec;
	return 0;
}

int op_detach_cgroup(struct req *r, struct jbuf *out)
{
	(void)out;
	struct cgctx c;
	if (req_cgctx(r, &c))
		return -1;
	int rc = 0;
	if (bpf_prog_detach2(c.a.fd, c.target_fd, c.type))
		rc = fail(errno, "prog %s: detach from %s %s", c.a.prog, c.map_target ? "map" : "cgroup", c.target);
	/* forget the matching record (same prog, same type, same target) */
	struct stat st1, st2;
	bool have_st = fstat(c.target_fd, &st1) == 0;
	for (struct cg_rec **pc = &g_cg; *pc;) {
		struct cg_rec *x = *pc;
		bool same_target = x->target_fd == c.target_fd ||
				   (have_st && fstat(x->target_fd, &st2) == 0 && st1.st_dev == st2.st_dev && st1.st_ino == st2.st_ino);
		if (x->prog_fd == c.a.fd && x->type == c.type && same_target) {
			*pc = x->next;
			cg_rec_free(x);
		} else {
			pc = &x->next;
		}
	}
	if (c.own_fd)
		close(c.target_fd);
	return rc;
}
