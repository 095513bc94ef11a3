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

static int attach_type_by_name(const char *name, enum bpf_attach_type *out)
{
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
	const char *ptname, *atname;
	enum bpf_prog_type pt = BPF_PROG_TYPE_UNSPEC;
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
	if (fd >= 0)
		close(fd);
	jb_kbool(out, "attachType", fd >= 0);
	jb_kint(out, "attachTypeErrno", e);
	return 0;
}
