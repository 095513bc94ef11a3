/* bpf-agent: what the running kernel accepts (op "probe"). See PROTOCOL.md.
 *
 * Whether a program type loads (libbpf_probe_bpf_prog_type), and whether the kernel accepts an
 * expected attach type for it (a two-instruction program loaded with that expected_attach_type:
 * a kernel that does not know the attach type refuses the load with EINVAL, one that predates the
 * field altogether with E2BIG or EINVAL). Tracing types (fentry, fexit, tp_btf, lsm) cannot be
 * loaded without a BTF target, so for them only the program type is probed. Works on any kernel:
 * nothing here needs BTF. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static int prog_type_by_name(const char *name, enum bpf_prog_type *out)
{
	for (int t = 0; t < 256; t++) {
		const char *s = libbpf_bpf_prog_type_str((enum bpf_prog_type)t);
		if (s && strcmp(s, name) == 0) {
			*out = (enum bpf_prog_type)t;
			return 0;
		}
	}
	return failx(EINVAL, "unknown program type \"%s\" (libbpf %u.%u names)", name, libbpf_major_version(),
		     libbpf_minor_version());
}

/* Attach types newer than Debian 12's libbpf 1.1, by hand; probed with BPF_LINK_CREATE. */
static const struct {
	const char *name;
	int type;
} g_newer[] = {
	{ "tcx_ingress", 46 },
	{ "tcx_egress", 47 },
};

static int attach_type_by_name(const char *name, enum bpf_attach_type *out)
{
	for (size_t i = 0; i < sizeof(g_newer) / sizeof(g_newer[0]); i++)
		if (strcmp(g_newer[i].name, name) == 0) {
			*out = (enum bpf_attach_type)g_newer[i].type;
			return 0;
		}
	for (int t = 0; t < 256; t++) {
		const char *s = libbpf_bpf_attach_type_str((enum bpf_attach_type)t);
		if (s && strcmp(s, name) == 0) {
			*out = (enum bpf_attach_type)t;
			return 0;
		}
	}
	return failx(EINVAL, "unknown attach type \"%s\" (libbpf %u.%u names)", name, libbpf_major_version(),
		     libbpf_minor_version());
}

int op_probe(struct req *r, struct jbuf *out)
{
	const char *ptname, *atname, *mtname;
	enum bpf_prog_type pt = BPF_PROG_TYPE_UNSPEC;
	if (req_str_opt(r, "mapType", &mtname))
		return -1;
	if (mtname) {
		/* a map type instead: "ringbuf", "perf_event_array", … */
		for (int t = 0; t < 256; t++) {
			const char *name = libbpf_bpf_map_type_str((enum bpf_map_type)t);
			if (name && strcmp(name, mtname) == 0) {
				errno = 0;
				int ok = libbpf_probe_bpf_map_type((enum bpf_map_type)t, NULL);
				jb_kbool(out, "mapType", ok == 1);
				jb_kint(out, "mapTypeErrno", ok == 1 ? 0 : ok < 0 ? -ok : (errno ? errno : EINVAL));
				return 0;
			}
		}
		return failx(EINVAL, "unknown map type \"%s\"", mtname);
	}
	if (req_str(r, "progType", &ptname, NULL) || req_str_opt(r, "attachType", &atname) ||
	    prog_type_by_name(ptname, &pt))
		return -1;
	enum bpf_attach_type at = 0;
	if (atname && attach_type_by_name(atname, &at))
		return -1;
	errno = 0;
	int ok = libbpf_probe_bpf_prog_type(pt, NULL);
	jb_kbool(out, "progType", ok == 1);
	jb_kint(out, "progTypeErrno", ok == 1 ? 0 : ok < 0 ? -ok : (errno ? errno : EINVAL));
	if (!atname)
		return 0;
	if (ok != 1) {
		jb_kbool(out, "attachType", false);
		jb_kint(out, "attachTypeErrno", 0);
		return 0;
	}
	/* r0 = 1; exit: a valid verdict for every hook that takes one */
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, po, .expected_attach_type = at);
	int fd = bpf_prog_load(pt, NULL, "GPL", insns, 2, &po);
	int e = fd < 0 ? errno : 0;
	bool newer = false;
	for (size_t i = 0; i < sizeof(g_newer) / sizeof(g_newer[0]); i++)
		newer |= (int)at == g_newer[i].type;
	if (fd >= 0 && newer) {
		/* The load does not check these attach types; a link on ifindex 0 does: a kernel that
		 * knows the type looks for the device (ENODEV), one that does not refuses the type (EINVAL). */
		union bpf_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.link_create.prog_fd = (uint32_t)fd;
		attr.link_create.attach_type = at;
		int lfd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
		if (lfd >= 0) {
			close(lfd);
		} else if (errno == EINVAL) {
			close(fd);
			fd = -1;
			e = EINVAL;
		}
	}
	if (fd >= 0 && at == BPF_TRACE_KPROBE_MULTI) {
		/* Loading does not check it either: a kprobe_multi link on a function that does not
		 * exist does. A kernel with it looks the name up (ESRCH/ENOENT), one built without
		 * fprobe says EOPNOTSUPP, one that predates it refuses the attach type (EINVAL). */
		const char *sym = "bh_no_such_function";
		union bpf_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.link_create.prog_fd = (uint32_t)fd;
		attr.link_create.attach_type = BPF_TRACE_KPROBE_MULTI;
		attr.link_create.kprobe_multi.cnt = 1;
		attr.link_create.kprobe_multi.syms = (uint64_t)(uintptr_t)&sym;
		int lfd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
		if (lfd >= 0) {
			close(lfd);
		} else if (errno != ESRCH && errno != ENOENT) {
			e = errno;
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	jb_kbool(out, "attachType", fd >= 0);
	jb_kint(out, "attachTypeErrno", e);
	return 0;
}
