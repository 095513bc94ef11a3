/* bpf-agent: what the attach ops share: the program a request names, and the link table. */
#ifndef BPF_AGENT_ATTACH_H
#define BPF_AGENT_ATTACH_H

#include "agent.h"

/* What an attach op reads first: "obj" and its loaded program "prog"; with a device, also
 * "ifname" and "netns" (default: the agent's own). Failures name the field, the object or the
 * program, as req_obj and req_prog do. */
struct attach {
	struct aobj *o;
	struct bpf_program *p;
	const char *prog;       /* the program's name, for messages */
	int fd;                 /* the program's fd */
	const char *ifname;     /* with a device */
	const char *netns;      /* with a device: "" is the agent's own */
	unsigned int ifindex;   /* set by attach_dev_enter */
};
int req_attach(const struct req *r, struct attach *a);
int req_attach_dev(const struct req *r, struct attach *a);
/* Enters a's netns and looks up its device ("prog P: ifindex for DEV in NETNS" when there is
 * none). The caller leaves with ns_leave() either way. */
int attach_dev_enter(struct attach *a);

/* Keeps n bpf_links (n 0: the raw link fd rawfd) of object o under a new link id, which goes into
 * the reply as "link". -1 (ENOMEM, nothing recorded) after releasing them. */
int link_keep(struct aobj *o, struct bpf_link **bls, int n, int rawfd, struct jbuf *out);
/* link_keep of the one link bl that a's program just made; fails "prog P" on ENOMEM. */
int attach_keep(const struct attach *a, struct bpf_link *bl, struct jbuf *out);

#endif
