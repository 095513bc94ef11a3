/* bpf-agent: the link table (detach), attach requests, and the attachments that are only a link. */
#define _GNU_SOURCE
#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>

/* ---------- what an attach op reads ---------- */

int req_attach(const struct req *r, struct attach *a)
{
	memset(a, 0, sizeof(*a));
	a->fd = -1;
	if (req_obj(r, &a->o) || req_prog(r, a->o, &a->p, &a->fd))
		return -1;
	a->prog = bpf_program__name(a->p);
	return 0;
}

int req_attach_dev(const struct req *r, struct attach *a)
{
	if (req_attach(r, a) || req_str(r, "ifname", &a->ifname, NULL) || req_str(r, "netns", &a->netns, ""))
		return -1;
	return 0;
}

int attach_dev_enter(struct attach *a)
{
	if (ns_enter(a->netns))
		return -1;
	return ifindex_of(a->ifname, a->netns, a->prog, &a->ifindex);
}

/* ---------- the link table ---------- */

struct alink {
	int id;
	struct aobj *owner;
	int n;
	struct bpf_link **l;
	int rawfd;          /* a link made with BPF_LINK_CREATE directly (tcx), or -1 */
	struct alink *next;
};

static struct alink *g_links;
static int g_next_link = 1;

static void link_free(struct alink *l)
{
	for (int i = 0; i < l->n; i++)
		bpf_link__destroy(l->l[i]);
	if (l->rawfd >= 0)
		close(l->rawfd);
	free(l->l);
	free(l);
}

int link_keep(struct aobj *o, struct bpf_link **bls, int n, int rawfd, struct jbuf *out)
{
	struct alink *l = calloc(1, sizeof(*l));
	struct bpf_link **copy = calloc((size_t)(n > 0 ? n : 1), sizeof(*copy));
	if (!l || !copy) {
		free(l);
		free(copy);
		for (int i = 0; i < n; i++)
			bpf_link__destroy(bls[i]);
		if (rawfd >= 0)
			close(rawfd);
		errno = ENOMEM;
		return -1;
	}
	if (n > 0)
		memcpy(copy, bls, (size_t)n * sizeof(*copy));
	l->owner = o;
	l->n = n;
	l->l = copy;
	l->rawfd = rawfd;
	l->id = g_next_link++;
	l->next = g_links;
	g_links = l;
	jb_kint(out, "link", l->id);
	return 0;
}

int attach_keep(const struct attach *a, struct bpf_link *bl, struct jbuf *out)
{
	if (link_keep(a->o, &bl, 1, -1, out))
		return fail(ENOMEM, "prog %s", a->prog);
	return 0;
}

void links_release_obj(struct aobj *o)
{
	for (struct alink **pl = &g_links; *pl;) {
		struct alink *l = *pl;
		if (!o || l->owner == o) {
			*pl = l->next;
			link_free(l);
		} else {
			pl = &l->next;
		}
	}
}

int op_detach(struct req *r, struct jbuf *out)
{
	(void)out;
	long long id;
	if (req_int(r, "link", &id, 0, true, 0, INT_MAX))
		return -1;
	for (struct alink **pl = &g_links; *pl; pl = &(*pl)->next) {
		if ((*pl)->id == id) {
			struct alink *l = *pl;
			*pl = l->next;
			link_free(l);
			return 0;
		}
	}
	return failx(ENOENT, "unknown link %lld", id);
}

/* ---------- attachments that are a link and nothing more ---------- */

/*
 * Raw tracepoints (4.17, BPF_RAW_TRACEPOINT_OPEN: no tracefs, no perf event) by name, or, without
 * a name, the attachment the program's section names, through libbpf's bpf_program__attach:
 * raw_tp/NAME, and the BTF-typed kinds (tp_btf/NAME, fentry/FUNC, fexit/FUNC, lsm/HOOK), whose
 * target libbpf resolved in the kernel's BTF when the object was loaded. Objects without such
 * programs never touch BTF, so the agent works on kernels without it.
 */
int op_attach_prog(struct req *r, struct jbuf *out)
{
	struct attach a;
	const char *raw, *netns, *cgroup;
	if (req_attach(r, &a) || req_str_opt(r, "rawTracepoint", &raw) || req_str_opt(r, "netns", &netns) ||
	    req_str_opt(r, "cgroup", &cgroup))
		return -1;
	if (cgroup && *cgroup) {
		/* a cgroup program as a bpf_link (BPF_LINK_CREATE, 5.7) instead of BPF_PROG_ATTACH */
		int cgfd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cgfd < 0)
			return fail(errno, "prog %s: open cgroup %s", a.prog, cgroup);
		struct bpf_link *bl = bpf_program__attach_cgroup(a.p, cgfd);
		int e = errno;
		close(cgfd);
		if (!bl)
			return fail(e, "prog %s: link to cgroup %s", a.prog, cgroup);
		return attach_keep(&a, bl, out);
	}
	int nsfd = -1;
	if (netns && *netns) {
		/* sk_lookup (5.9): a bpf_link on a network namespace */
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "/var/run/netns/%s", netns);
		if (strchr(netns, '/') || (nsfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return fail(errno ? errno : EINVAL, "prog %s: netns %s", a.prog, netns);
	}
	struct bpf_link *bl = nsfd >= 0 ? bpf_program__attach_netns(a.p, nsfd)
			      : raw && *raw ? bpf_program__attach_raw_tracepoint(a.p, raw) : bpf_program__attach(a.p);
	int e = errno;
	if (nsfd >= 0)
		close(nsfd);
	if (!bl) {
		if (netns && *netns)
			return fail(e, "prog %s: attach to netns %s", a.prog, netns);
		if (raw && *raw)
			return fail(e, "prog %s: raw tracepoint %s", a.prog, raw);
		return fail(e, "prog %s: attach (section %s)", a.prog, bpf_program__section_name(a.p));
	}
	return attach_keep(&a, bl, out);
}

/* A struct_ops map of a loaded object (5.6; a TCP congestion control, …) registered with the
 * kernel through libbpf's bpf_map__attach_struct_ops; detaching unregisters it. */
int op_attach_struct_ops(struct req *r, struct jbuf *out)
{
	struct aobj *o;
	struct bpf_map *m;
	if (req_obj(r, &o) || req_map(r, o, "map", &m))
		return -1;
	struct bpf_link *bl = bpf_map__attach_struct_ops(m);
	if (!bl)
		return fail(errno, "map %s: register struct_ops", bpf_map__name(m));
	if (link_keep(o, &bl, 1, -1, out))
		return fail(ENOMEM, "map %s", bpf_map__name(m));
	return 0;
}
