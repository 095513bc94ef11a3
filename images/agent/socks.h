/* bpf-agent: the agent's socket table (socks.c), shared with the ops that make sockets (sock_make.c). */
#ifndef BPF_AGENT_SOCKS_H
#define BPF_AGENT_SOCKS_H

#include "agent.h"

#define STAT_RCVBUF (32 << 20)

enum skind { SK_UDP_LISTEN, SK_UDP, SK_PACKET, SK_TCP };

struct asock {
	int id;
	int fd;
	enum skind kind;
	bool stat;            /* counted in the background; read with sock_stats */
	struct rx_count rx;
	struct asock *next;
};

/* Adds fd as a new socket of the table (a statistics socket, unless TCP: made non-blocking);
 * NULL on ENOMEM. */
struct asock *sock_add(int fd, enum skind kind);
/* The socket whose id is the request's field `key`; fails "unknown sock N". */
int req_sock(const struct req *r, const char *key, struct asock **out);

#endif
