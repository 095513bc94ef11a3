/* bpf-agent: loaded objects by handle: load, unload, and looking up their programs and maps. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>
#include <elf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

struct aobj {
	char *name;
	char *path;
	struct bpf_object *obj;
	struct aobj *next;
};

static struct aobj *g_objs;

struct bpf_object *aobj_obj(struct aobj *o) { return o->obj; }
const char *aobj_name(struct aobj *o) { return o->name; }

static struct aobj *obj_find(const char *name)
{
	for (struct aobj *o = g_objs; o; o = o->next)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

int req_obj(const struct req *r, struct aobj **out)
{
	*out = NULL;
	const char *name;
	if (req_str(r, "obj", &name, NULL))
		return -1;
	struct aobj *o = obj_find(name);
	if (!o)
		return failx(ENOENT, "unknown obj \"%s\" (not loaded)", name);
	*out = o;
	return 0;
}

int req_prog(const struct req *r, struct aobj *o, struct bpf_program **out, int *fd)
{
	*out = NULL;
	if (fd)
		*fd = -1;
	const char *name;
	if (req_str(r, "prog", &name, NULL))
		return -1;
	struct bpf_program *p = bpf_object__find_program_by_name(o->obj, name);
	if (!p)
		return failx(ENOENT, "obj %s has no program \"%s\"", o->name, name);
	int pfd = bpf_program__fd(p);
	if (pfd < 0)
		return failx(EBADF, "obj %s: program %s is not loaded", o->name, name);
	*out = p;
	if (fd)
		*fd = pfd;
	return 0;
}

int req_map(const struct req *r, struct aobj *o, const char *key, struct bpf_map **out)
{
	*out = NULL;
	const char *name;
	if (req_str(r, key, &name, NULL))
		return -1;
	struct bpf_map *m = bpf_object__find_map_by_name(o->obj, name);
	if (!m)
		return failx(ENOENT, "obj %s has no map \"%s\"", o->name, name);
	if (bpf_map__fd(m) < 0)
		return failx(EBADF, "obj %s: map %s was not created", o->name, name);
	*out = m;
	return 0;
}

/* Detaches what the agent attached from this object (XDP only if still ours), then closes it. */
static void obj_release(struct aobj *o, bool detach_persistent)
{
	events_release_obj(o);
	links_release_obj(o);
	cgroup_release_obj(o, detach_persistent);
	xdp_release_obj(o, detach_persistent);
	bpf_object__close(o->obj);
	free(o->name);
	free(o->path);
	free(o);
}

void objs_release_all(bool detach_persistent)
{
	while (g_objs) {
		struct aobj *o = g_objs;
		g_objs = o->next;
		obj_release(o, detach_persistent);
	}
}

/* ---------- load / unload ---------- */

/* From libbpf's log after a failed load, pick "prog 'x'" and the verifier's last real message. */
static void summarize_load_failure(const char *log, char *prog, size_t plen, char *msg, size_t mlen)
{
	prog[0] = msg[0] = '\0';
	const char *end = strstr(log, "-- END PROG LOAD LOG --");
	const char *begin = NULL;
	if (end) {
		/* find the matching BEGIN before END */
		const char *p = log, *q;
		while ((q = strstr(p, "-- BEGIN PROG LOAD LOG --")) && q < end) {
			begin = q;
			p = q + 1;
		}
	}
	if (begin) {
		/* "libbpf: prog 'name': -- BEGIN ..." */
		const char *ls = begin;
		while (ls > log && ls[-1] != '\n')
			ls--;
		const char *pq = strstr(ls, "prog '");
		if (pq && pq < begin) {
			pq += 6;
			const char *pe = strchr(pq, '\'');
			if (pe && pe < begin) {
				size_t n = (size_t)(pe - pq) < plen - 1 ? (size_t)(pe - pq) : plen - 1;
				memcpy(prog, pq, n);
				prog[n] = '\0';
			}
		}
		/* walk lines backwards from END, skipping statistics lines; keep up to two message
		 * lines (e.g. "invalid access to packet, ..." followed by a hint), stopping at an
		 * instruction ("12: (61) ...") or source (";") line */
		const char *body = strchr(begin, '\n');
		const char *e = end;
		const char *lines[2];
		size_t lens[2];
		int nl = 0;
		while (body && e > body && nl < 2) {
			const char *le = e;
			while (le > body && (le[-1] == '\n' || le[-1] == ' '))
				le--;
			const char *lb = le;
			while (lb > body && lb[-1] != '\n')
				lb--;
			size_t n = (size_t)(le - lb);
			if (n == 0)
				break;
			e = lb;
			if (strncmp(lb, "processed ", 10) == 0 || strncmp(lb, "verification time", 17) == 0 ||
			    strncmp(lb, "stack depth", 11) == 0 || strncmp(lb, "max_states_per_insn", 19) == 0 ||
			    strncmp(lb, "peak_states", 11) == 0 || strncmp(lb, "mark_read", 9) == 0)
				continue;
			const char *d = lb;
			while (d < le && *d >= '0' && *d <= '9')
				d++;
			bool insn = (d > lb && d < le && *d == ':') || lb[0] == ';';
			if (insn && nl > 0)
				break;
			lines[nl] = lb;
			lens[nl] = n;
			nl++;
			if (insn)
				break;
		}
		size_t off = 0;
		for (int i = nl - 1; i >= 0; i--) {
			int w = snprintf(msg + off, mlen - off, "%s%.*s", off ? "; " : "", (int)lens[i], lines[i]);
			if (w < 0 || (size_t)w >= mlen - off) {
				msg[mlen - 1] = '\0';
				break;
			}
			off += (size_t)w;
		}
	}
}

/* LINUX_VERSION_CODE of the running kernel, from the vDSO's "Linux" ELF note (0 if unknown).
 * Kernels before 5.0 refuse kprobe programs whose kern_version differs from it, and uname's
 * release string does not always give it (distribution ABI numbers, sublevels above 255). */
static uint32_t vdso_linux_version(void)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)getauxval(AT_SYSINFO_EHDR);
	if (!eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64)
		return 0;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)((const char *)eh + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_NOTE)
			continue;
		const char *p = (const char *)eh + ph[i].p_offset, *end = p + ph[i].p_filesz;
		while (p + sizeof(Elf64_Nhdr) <= end) {
			const Elf64_Nhdr *nh = (const Elf64_Nhdr *)p;
			const char *name = p + sizeof(*nh);
			const char *desc = name + ((nh->n_namesz + 3) & ~3u);
			if (desc + nh->n_descsz > end)
				break;
			if (nh->n_namesz == 6 && memcmp(name, "Linux", 6) == 0 && nh->n_type == 0 && nh->n_descsz == 4) {
				uint32_t v;
				memcpy(&v, desc, 4);
				return v;
			}
			p = desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 0;
}

/* Opens an entry of a list in the reply: {"name":NAME (a comma before all but the first). */
static void list_entry(struct jbuf *out, bool *first, const char *name)
{
	jb_puts(out, *first ? "{\"name\":" : ",{\"name\":");
	*first = false;
	jb_cstr(out, name);
}

int op_load(struct req *r, struct jbuf *out)
{
	const char *path, *name;
	if (req_str(r, "path", &path, NULL) || req_str_opt(r, "name", &name))
		return -1;
	char handle[256];
	if (name && *name) {
		if (obj_find(name))
			return failx(EEXIST, "obj handle \"%s\" is already in use (unload it first)", name);
		snprintf(handle, sizeof(handle), "%s", name);
	} else {
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		snprintf(handle, sizeof(handle), "%s", base);
		for (int i = 2; obj_find(handle); i++)
			snprintf(handle, sizeof(handle), "%s#%d", base, i);
	}
	if (access(path, R_OK) < 0)
		return fail(errno, "%s", path);

	/* No custom kernel log buffer: libbpf then loads with log_level 0, retries a failed load
	 * with its own (growing) buffer at log_level 1 and prints the verifier log through the
	 * print callback, which captures it for the response. */
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct bpf_object *obj = bpf_object__open_file(path, &oo);
	if (!obj)
		return fail(errno, "%s: open", path);
	static uint32_t kver;
	if (!kver)
		kver = vdso_linux_version();
	if (kver)
		bpf_object__set_kversion(obj, kver);
	int err = bpf_object__load(obj);
	if (err) {
		err = -err;
		char prog[128], vmsg[512];
		summarize_load_failure(libbpf_log(), prog, sizeof(prog), vmsg, sizeof(vmsg));
		bpf_object__close(obj);
		if (prog[0] && vmsg[0])
			return failx(err, "%s: program %s rejected: %s: %s", path, prog, errstr(err), vmsg);
		if (prog[0])
			return fail(err, "%s: program %s failed to load", path, prog);
		return fail(err, "%s: load failed (see log)", path);
	}
	struct aobj *o = calloc(1, sizeof(*o));
	if (!o) {
		bpf_object__close(obj);
		return fail(ENOMEM, "%s", path);
	}
	o->name = strdup(handle);
	o->path = strdup(path);
	o->obj = obj;
	/* keep load order for listing */
	struct aobj **pp = &g_objs;
	while (*pp)
		pp = &(*pp)->next;
	*pp = o;

	jb_kstr(out, "obj", o->name);
	jb_key(out, "programs");
	jb_putc(out, '[');
	struct bpf_program *p;
	bool first = true;
	bpf_object__for_each_program(p, obj) {
		const char *t = libbpf_bpf_prog_type_str(bpf_program__type(p));
		list_entry(out, &first, bpf_program__name(p));
		jb_kstr(out, "section", bpf_program__section_name(p));
		jb_kstr(out, "type", t ? t : "unknown");
		/* the id the kernel gave the loaded program (bpftool and netlink report it) */
		struct bpf_prog_info info;
		uint32_t ilen = sizeof(info);
		memset(&info, 0, sizeof(info));
		if (bpf_program__fd(p) >= 0 && bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &ilen) == 0)
			jb_printf(out, ",\"id\":%u", info.id);
		jb_putc(out, '}');
	}
	jb_putc(out, ']');
	jb_key(out, "maps");
	jb_putc(out, '[');
	struct bpf_map *m;
	first = true;
	bpf_object__for_each_map(m, obj) {
		const char *t = libbpf_bpf_map_type_str(bpf_map__type(m));
		list_entry(out, &first, bpf_map__name(m));
		jb_kstr(out, "type", t ? t : "unknown");
		jb_printf(out, ",\"keySize\":%u,\"valueSize\":%u,\"maxEntries\":%u}", bpf_map__key_size(m),
			  bpf_map__value_size(m), bpf_map__max_entries(m));
	}
	jb_putc(out, ']');
	return 0;
}

int op_unload(struct req *r, struct jbuf *out)
{
	(void)out;
	struct aobj *o;
	if (req_obj(r, &o))
		return -1;
	for (struct aobj **pp = &g_objs; *pp; pp = &(*pp)->next) {
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	}
	obj_release(o, true);
	return 0;
}

