/* bpf-agent: shared declarations. See PROTOCOL.md for the wire contract. */
#ifndef BPF_AGENT_H
#define BPF_AGENT_H

#include <stdint.h>
#include <stdbool.h>
#include <bpf/libbpf.h>
#include "json.h"

#define AGENT_VERSION "bpf-agent 0.3"

/* After an exact end (every reply, or the expected count, is in): how long nothing more may
 * arrive before a read returns. A surplus (a duplicated packet) still shows up. */
#define SETTLE_NS (20ull * 1000000ull)

/* ---------- the request loop (agent.c) ---------- */

extern pid_t g_agent_pid;       /* pid of the agent process (children inherit it) */
extern bool g_in_child;         /* true in a forked helper child */
/* What libbpf printed while the current request was served ("" if nothing). */
const char *libbpf_log(void);

/* ---------- request fields, errors and network namespaces (request.c) ---------- */

struct req {
	struct jobj o;
	long long id;
	const char *op;
};

extern const char *g_op;        /* name of the operation being served, for messages */

/* Record a failure "<op>: <fmt>: strerror(err)"; returns -1. err is a positive errno. */
int fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same without the strerror suffix. */
int failx(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Record a failure message verbatim (used for results relayed from children). */
int fail_raw(int err, const char *msg);
const char *err_msg(void);
int err_errno(void);
void err_reset(void);           /* before each request */
const char *errstr(int err);

/* Field access. "Absent" means missing or null. Each returns 0, or -1 with the failure recorded. */
int req_str(const struct req *r, const char *key, const char **out, const char *def);   /* def NULL: required */
int req_str_opt(const struct req *r, const char *key, const char **out);              /* *out NULL if absent */
int req_bytes(const struct req *r, const char *key, const char **out, size_t *len);   /* required */
int req_int(const struct req *r, const char *key, long long *out, long long def, bool required,
	    long long min, long long max);
int req_bool(const struct req *r, const char *key, bool *out, bool def);
/* A required even-length hex string, decoded into a malloc'd *buf (the caller frees it). */
int req_hex(const struct req *r, const char *key, uint8_t **buf, size_t *n);
/* s, the value of field `field`, as an IPv4 address. */
struct in_addr;
int parse_ip4(const char *field, const char *s, struct in_addr *a);

/* Network namespaces: enter for one operation, always leave. */
int ns_init(void);               /* once, at start: remembers the agent's own netns */
int ns_open(const char *name);
int ns_enter(const char *name);  /* NULL/"" = stay; -1 with failure recorded */
void ns_leave(void);
const char *ns_label(const char *name);  /* "netns X" or "own netns", for messages */
/* The ifindex of ifname in the current netns (named netns, for the message); fails "ifindex for
 * DEV in NETNS", after "prog P: " if prog is not NULL. */
int ifindex_of(const char *ifname, const char *netns, const char *prog, unsigned int *out);

uint64_t now_ns(void);

/* ---------- loaded objects (objects.c) ---------- */

struct aobj;
int req_obj(const struct req *r, struct aobj **out);
int req_prog(const struct req *r, struct aobj *o, struct bpf_program **out, int *fd);
/* The created map of o named by the request's field `key`. */
int req_map(const struct req *r, struct aobj *o, const char *key, struct bpf_map **out);
struct bpf_object *aobj_obj(struct aobj *o);
const char *aobj_name(struct aobj *o);
int op_load(struct req *r, struct jbuf *out);
int op_unload(struct req *r, struct jbuf *out);
/* Unloads every object, detaching what stays attached without a link if detach_persistent. */
void objs_release_all(bool detach_persistent);

/* ---------- maps (maps.c) ---------- */
int op_map_lookup(struct req *r, struct jbuf *out);
int op_map_update(struct req *r, struct jbuf *out);
int op_map_delete(struct req *r, struct jbuf *out);
int op_map_dump(struct req *r, struct jbuf *out);
void pinned_close_all(void);

/* ---------- attachments (attach.c, attach_trace.c, attach_dev.c, attach_cgroup.c; attach.h) ---------- */
int op_detach(struct req *r, struct jbuf *out);
int op_attach_prog(struct req *r, struct jbuf *out);
int op_attach_struct_ops(struct req *r, struct jbuf *out);
int op_attach_kprobe(struct req *r, struct jbuf *out);
int op_attach_uprobe(struct req *r, struct jbuf *out);
int op_attach_kprobe_multi(struct req *r, struct jbuf *out);
int op_attach_tracepoint(struct req *r, struct jbuf *out);
int op_attach_perf_event(struct req *r, struct jbuf *out);
int op_syscalls(struct req *r, struct jbuf *out);
int op_attach_xdp(struct req *r, struct jbuf *out);
int op_detach_xdp(struct req *r, struct jbuf *out);
int op_attach_tcx(struct req *r, struct jbuf *out);
int op_attach_cgroup(struct req *r, struct jbuf *out);
int op_detach_cgroup(struct req *r, struct jbuf *out);
/* What an object leaves attached goes with it (o NULL: every link). */
void links_release_obj(struct aobj *o);
void xdp_release_obj(struct aobj *o, bool detach_persistent);
void cgroup_release_obj(struct aobj *o, bool detach_persistent);

/* ---------- sockets (socks.c, sock_make.c; socks.h) and traffic (send.c) ---------- */

/* Polls all statistics sockets (and extra_fd if >= 0) for at most timeout_ns, counting what
 * arrived. Returns 1 if extra_fd became readable, 0 on timeout. */
int pump(int extra_fd, int64_t timeout_ns);
int stat_fds_count(void);
void socks_close_all(void);
void set_rcvbuf(int fd, int bytes);  /* SO_RCVBUFFORCE, else as much as SO_RCVBUF gives */
/* One receive buffer for every packet read; nothing keeps its contents across a pump(). */
#define RX_BUF_SIZE (65536 + 256)
extern uint8_t g_rx[RX_BUF_SIZE];

int op_udp_listen(struct req *r, struct jbuf *out);
int op_sock_stats(struct req *r, struct jbuf *out);
int op_sock_close(struct req *r, struct jbuf *out);
int op_send(struct req *r, struct jbuf *out);
int op_sock_open(struct req *r, struct jbuf *out);
int op_tcp_pair(struct req *r, struct jbuf *out);
int op_sockmap_add(struct req *r, struct jbuf *out);
int op_sock_write(struct req *r, struct jbuf *out);
int op_sock_read(struct req *r, struct jbuf *out);
int op_sock_create_test(struct req *r, struct jbuf *out);
int op_sock_info(struct req *r, struct jbuf *out);

/* ---------- shell commands (run.c) ---------- */
int op_run(struct req *r, struct jbuf *out);

/* ---------- between tests (scrub.c) ---------- */
int guest_scrub(bool all);
int kmsg_mark(const char *mark);
int op_sysctl_snapshot(struct req *r, struct jbuf *out);
int op_sysctl_restore(struct req *r, struct jbuf *out);

/* ---------- namespaces and veth pairs over rtnetlink (topology.c) ---------- */
int op_veth_pair(struct req *r, struct jbuf *out);

/* ---------- helper children in a cgroup (child.c) ---------- */

/* tcp_pair's most pairs; a helper child hands back at most 2 * MAX_PAIRS + 2 descriptors. */
#define MAX_PAIRS 100

/* Runs fn in a forked child that first joins the cgroup v2 directory `cgroup` (and stays in the
 * caller's current netns). The child sends back up to 8 integers and up to maxfds descriptors. */
struct child_res {
	int err;            /* 0 = success */
	char msg[1536];     /* failure message */
	long long v[8];
	int nfds;
};
typedef int (*child_fn)(void *arg, struct child_res *res, int *fds, int maxfds);
int run_in_cgroup(const char *cgroup, child_fn fn, void *arg, struct child_res *res, int *fds, int maxfds,
		  int64_t timeout_ns);

/* probe.c: op "probe" (does a program type load, is an expected attach type accepted) */
int op_probe(struct req *r, struct jbuf *out);

/* inet.c: plain inet sockets that report the addresses the kernel decided */
int op_inet_socket(struct req *r, struct jbuf *out);
int op_inet_connect(struct req *r, struct jbuf *out);
int op_inet_send(struct req *r, struct jbuf *out);
int op_inet_recv(struct req *r, struct jbuf *out);
int op_inet_close(struct req *r, struct jbuf *out);
int op_inet_sockmap_add(struct req *r, struct jbuf *out);
int op_inet_attach_reuseport(struct req *r, struct jbuf *out);
void inet_socks_close_all(void);

/* events.c: ring buffer and perf event array output */
int op_events_open(struct req *r, struct jbuf *out);
int op_events_read(struct req *r, struct jbuf *out);
void events_release_obj(struct aobj *o);  /* NULL: every reader */

/* xsk.c: AF_XDP sockets */
int op_xsk_open(struct req *r, struct jbuf *out);
int op_xsk_stats(struct req *r, struct jbuf *out);
void xsk_close_all(void);

/* entropy.c: bpf-agent --seed-entropy HEX (run by the guest's init before the SSH server) */
int seed_entropy(const char *hex);

#endif
