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

struct req;
/* An op: serves one request, adding its result fields to out; 0, or -1 with the failure recorded. */
typedef int op_fn(struct req *r, struct jbuf *out);

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
/* The value that goes with s: values[i] where names[i] (NULL-terminated) is s; -1 if s is none of
 * them, with no failure recorded (the caller says which names it takes). */
int str_pick(const char *s, const char *const *names, const int *values, int *out);
/* s, the value of field `field`, as an IPv4 address. */
struct in_addr;
int parse_ip4(const char *field, const char *s, struct in_addr *a);
/* The field `key` (default def; NULL: required) as an IPv4 address. */
int req_ip4(const struct req *r, const char *key, struct in_addr *a, const char *def);

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
op_fn op_load, op_unload;
/* Unloads every object, detaching what stays attached without a link if detach_persistent. */
void objs_release_all(bool detach_persistent);

/* ---------- maps (maps.c) ---------- */
op_fn op_map_lookup, op_map_update, op_map_delete, op_map_dump;
void pinned_close_all(void);
/* Puts socket fd at key of a sockmap or sockhash of 4- or 8-byte keys and values; the result of
 * bpf_map_update_elem (errno set). */
int map_put_sock(struct bpf_map *m, long long key, int fd);
/* A count kept in a map, named by a request as for map_lookup ("obj" + "map", or "pin", and
 * "key"): the value's first 8 bytes (4 when it is smaller) as a little-endian number, summed
 * over CPUs for a per-CPU map, and 0 while the key is absent. An op's exact end polls it. */
struct map_counter;
struct map_counter *map_counter_open(const struct req *r);
int map_counter_read(const struct map_counter *k, uint64_t *v);
void map_counter_free(struct map_counter *k);

/* ---------- attachments (attach.c, attach_trace.c, attach_dev.c, attach_cgroup.c; attach.h) ---------- */
op_fn op_detach, op_attach_prog, op_attach_struct_ops;                               /* attach.c */
op_fn op_attach_kprobe, op_attach_uprobe, op_attach_kprobe_multi, op_attach_tracepoint,
      op_attach_perf_event, op_syscalls;                                             /* attach_trace.c */
op_fn op_attach_xdp, op_detach_xdp, op_attach_tcx;                                   /* attach_dev.c */
op_fn op_attach_cgroup, op_detach_cgroup;                                            /* attach_cgroup.c */
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
/* What a socket received since it was last read: the count, the bytes, the first lengths. */
#define MAX_LENGTHS 1000
struct rx_count {
	uint64_t n, bytes;
	uint32_t lengths[MAX_LENGTHS];
	int nlen;
};
void rx_count_add(struct rx_count *c, uint32_t len);
/* Puts the count as `what` (packets, frames), "bytes" and "lengths" into the reply; starts anew. */
void rx_count_put(struct jbuf *out, struct rx_count *c, const char *what);
/* One receive buffer for every packet read; nothing keeps its contents across a pump(). */
#define RX_BUF_SIZE (65536 + 256)
extern uint8_t g_rx[RX_BUF_SIZE];

op_fn op_sock_stats, op_sock_close, op_sock_write, op_sock_read, op_sock_info;         /* socks.c */
op_fn op_udp_listen, op_sock_open, op_tcp_pair, op_sockmap_add, op_sock_create_test;  /* sock_make.c */
op_fn op_send;                                                                        /* send.c */

/* ---------- shell commands (run.c) ---------- */
op_fn op_run;

/* ---------- between tests (scrub.c) ---------- */
int guest_scrub(bool all);
int kmsg_mark(const char *mark);
op_fn op_sysctl_snapshot, op_sysctl_restore;

/* ---------- namespaces and veth pairs over rtnetlink (topology.c) ---------- */
op_fn op_veth_pair;

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
op_fn op_probe;

/* inet.c: plain inet sockets that report the addresses the kernel decided */
op_fn op_inet_socket, op_inet_connect, op_inet_send, op_inet_recv, op_inet_close,
      op_inet_sockmap_add, op_inet_attach_reuseport;
void inet_socks_close_all(void);

/* events.c: ring buffer and perf event array output */
op_fn op_events_open, op_events_read;
void events_release_obj(struct aobj *o);  /* NULL: every reader */

/* xsk.c: AF_XDP sockets */
op_fn op_xsk_open, op_xsk_stats;
void xsk_close_all(void);

/* entropy.c: bpf-agent --seed-entropy HEX (run by the guest's init before the SSH server) */
int seed_entropy(const char *hex);
int after_restore(const char *hex);

#endif
