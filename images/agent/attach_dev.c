/* bpf-agent: programs on a network device: XDP (through netlink) and tcx links. */
#define _GNU_SOURCE
#include "attach.h"

#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* ---------- XDP ---------- */

/* An XDP attachment: it stays on the device until detached, so the agent remembers it. */
struct xdp_rec {
	struct aobj *owner;
	char *netns, *ifname;
	uint32_t flags;     /* the mode flag actually used */
	uint32_t prog_id;
	struct xdp_rec *next;
};

static struct xdp_rec *g_xdp;

static void xdp_rec_free(struct xdp_rec *x)
{
	free(x->netns);
	free(x->ifname);
	free(x);
}

/* Forgets the records of ifname in netns (of mode flags; 0: any). */
static void xdp_forget(const char *netns, const char *ifname, uint32_t flags)
{
	for (struct xdp_rec **px = &g_xdp; *px;) {
		struct xdp_rec *x = *px;
		if (strcmp(x->ifname, ifname) == 0 && strcmp(x->netns, netns) == 0 && (!flags || flags == x->flags)) {
			*px = x->next;
			xdp_rec_free(x);
		} else {
			px = &x->next;
		}
	}
}

void xdp_release_obj(struct aobj *o, bool detach_persistent)
{
	for (struct xdp_rec **px = &g_xdp; *px;) {
		struct xdp_rec *x = *px;
		if (x->owner == o) {
			if (detach_persistent && ns_enter(x->netns) == 0) {
				unsigned int ifindex = if_nametoindex(x->ifname);
				LIBBPF_OPTS(bpf_xdp_query_opts, q);
				if (ifindex && bpf_xdp_query((int)ifindex, 0, &q) == 0 &&
				    (q.prog_id == x->prog_id || q.drv_prog_id == x->prog_id || q.skb_prog_id == x->prog_id))
					bpf_xdp_detach((int)ifindex, x->flags, NULL);
				ns_leave();
			}
			*px = x->next;
			xdp_rec_free(x);
		} else {
			px = &x->next;
		}
	}
}

static int xdp_mode_flags(const char *mode, uint32_t *flags)
{
	if (strcmp(mode, "generic") == 0 || strcmp(mode, "skb") == 0)
		*flags = XDP_FLAGS_SKB_MODE;
	else if (strcmp(mode, "native") == 0 || strcmp(mode, "drv") == 0)
		*flags = XDP_FLAGS_DRV_MODE;
	else if (strcmp(mode, "any") == 0)
		*flags = 0;
	else
		return failx(EINVAL, "bad mode \"%s\" (generic, native or any)", mode);
	return 0;
}

static uint32_t prog_id_of(int fd)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

int op_attach_xdp(struct req *r, struct jbuf *out)
{
	struct attach a;
	const char *mode;
	uint32_t flags;
	if (req_attach_dev(r, &a) || req_str(r, "mode", &mode, "any") || xdp_mode_flags(mode, &flags))
		return -1;
	int rc = -1;
	if (attach_dev_enter(&a))
		goto out;
	int ifindex = (int)a.ifindex;
	uint32_t used;
	if (flags) {
		int err = bpf_xdp_attach(ifindex, a.fd, flags, NULL);
		if (err) {
			fail(-err, "prog %s: attach to %s in %s (%s mode)", a.prog, a.ifname, ns_label(a.netns),
			     flags == XDP_FLAGS_SKB_MODE ? "generic" : "native");
			goto out;
		}
		used = flags;
	} else {
		int err = bpf_xdp_attach(ifindex, a.fd, XDP_FLAGS_DRV_MODE, NULL);
		used = XDP_FLAGS_DRV_MODE;
		if (err) {
			int err2 = bpf_xdp_attach(ifindex, a.fd, XDP_FLAGS_SKB_MODE, NULL);
			used = XDP_FLAGS_SKB_MODE;
			if (err2) {
				fail(-err2, "prog %s: attach to %s in %s (native: %s; generic)", a.prog, a.ifname,
				     ns_label(a.netns), errstr(-err));
				goto out;
			}
		}
	}
	/* replace an older record for the same device */
	xdp_forget(a.netns, a.ifname, 0);
	struct xdp_rec *x = calloc(1, sizeof(*x));
	if (x) {
		x->owner = a.o;
		x->netns = strdup(a.netns);
		x->ifname = strdup(a.ifname);
		x->flags = used;
		x->prog_id = prog_id_of(a.fd);
		x->next = g_xdp;
		g_xdp = x;
	}
	jb_kstr(out, "mode", used == XDP_FLAGS_SKB_MODE ? "generic" : "native");
	rc = 0;
out:
	ns_leave();
	return rc;
}

int op_detach_xdp(struct req *r, struct jbuf *out)
{
	(void)out;
	const char *ifname, *netns, *mode;
	uint32_t flags;
	unsigned int ifindex;
	if (req_str(r, "ifname", &ifname, NULL) || req_str(r, "netns", &netns, "") ||
	    req_str(r, "mode", &mode, "any") || xdp_mode_flags(mode, &flags))
		return -1;
	int rc = -1;
	if (ns_enter(netns) || ifindex_of(ifname, netns, NULL, &ifindex))
		goto out;
	if (flags) {
		int err = bpf_xdp_detach((int)ifindex, flags, NULL);
		if (err) {
			fail(-err, "detach from %s in %s", ifname, ns_label(netns));
			goto out;
		}
	} else {
		/* "any": detach whatever mode is attached */
		LIBBPF_OPTS(bpf_xdp_query_opts, q);
		int err = bpf_xdp_query((int)ifindex, 0, &q);
		if (err) {
			fail(-err, "query XDP on %s in %s", ifname, ns_label(netns));
			goto out;
		}
		uint32_t modes[2] = { 0, 0 };
		int nm = 0;
		switch (q.attach_mode) {
		case XDP_ATTACHED_DRV: modes[nm++] = XDP_FLAGS_DRV_MODE; break;
		case XDP_ATTACHED_SKB: modes[nm++] = XDP_FLAGS_SKB_MODE; break;
		case XDP_ATTACHED_HW: modes[nm++] = XDP_FLAGS_HW_MODE; break;
		case XDP_ATTACHED_MULTI:
			if (q.drv_prog_id)
				modes[nm++] = XDP_FLAGS_DRV_MODE;
			if (q.skb_prog_id)
				modes[nm++] = XDP_FLAGS_SKB_MODE;
			break;
		default: break;
		}
		for (int i = 0; i < nm; i++) {
			err = bpf_xdp_detach((int)ifindex, modes[i], NULL);
			if (err) {
				fail(-err, "detach from %s in %s", ifname, ns_label(netns));
				goto out;
			}
		}
	}
	xdp_forget(netns, ifname, flags);
	rc = 0;
out:
	ns_leave();
	return rc;
}

/* ---------- tcx ---------- */

/*
 * tcx (6.6): a sched_cls program on a device's ingress or egress through BPF_LINK_CREATE with
 * BPF_TCX_INGRESS/BPF_TCX_EGRESS. Debian 12's libbpf (1.1) and headers predate tcx, so the
 * attach types, the mprog flags and the link_create.tcx layout are spelled out here. `before` or
 * `after` name another program of the same object, already attached there, to place this one
 * relative to it (BPF_F_BEFORE/BPF_F_AFTER with its program fd); without either it goes last.
 */
#define AGENT_BPF_TCX_INGRESS 46
#define AGENT_BPF_TCX_EGRESS 47
#define AGENT_BPF_F_BEFORE (1U << 3)
#define AGENT_BPF_F_AFTER (1U << 4)

int op_attach_tcx(struct req *r, struct jbuf *out)
{
	struct attach a;
	const char *dir, *before, *after;
	if (req_attach_dev(r, &a) || req_str(r, "direction", &dir, NULL) || req_str_opt(r, "before", &before) ||
	    req_str_opt(r, "after", &after))
		return -1;
	static const char *const dirs[] = { "ingress", "egress", NULL };
	static const int types[] = { AGENT_BPF_TCX_INGRESS, AGENT_BPF_TCX_EGRESS };
	int at;
	if (str_pick(dir, dirs, types, &at))
		return failx(EINVAL, "direction \"%s\": ingress or egress", dir);
	if (before && after)
		return failx(EINVAL, "give before or after, not both");
	uint32_t flags = 0, relative_fd = 0;
	const char *rel = before ? before : after;
	if (rel) {
		struct bpf_program *rp = bpf_object__find_program_by_name(aobj_obj(a.o), rel);
		if (!rp || bpf_program__fd(rp) < 0)
			return failx(ENOENT, "obj %s has no loaded program \"%s\"", aobj_name(a.o), rel);
		relative_fd = (uint32_t)bpf_program__fd(rp);
		flags = before ? AGENT_BPF_F_BEFORE : AGENT_BPF_F_AFTER;
	}
	int rc = -1;
	if (attach_dev_enter(&a))
		goto out;
	/* union bpf_attr's link_create: prog_fd @0, target_ifindex @4, attach_type @8, flags @12,
	 * tcx.relative_fd @16, tcx.expected_revision @24 */
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	uint8_t *b = (uint8_t *)&attr;
	uint32_t u = (uint32_t)a.fd;
	memcpy(b + 0, &u, 4);
	memcpy(b + 4, &a.ifindex, 4);
	memcpy(b + 8, &at, 4);
	memcpy(b + 12, &flags, 4);
	memcpy(b + 16, &relative_fd, 4);
	int lfd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	if (lfd < 0) {
		fail(errno, "prog %s: tcx %s link on %s in %s", a.prog, dir, a.ifname, ns_label(a.netns));
		goto out;
	}
	if (link_keep(a.o, NULL, 0, lfd, out)) {
		fail(ENOMEM, "prog %s", a.prog);
		goto out;
	}
	rc = 0;
out:
	ns_leave();
	return rc;
}
