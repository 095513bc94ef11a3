/* Counting only what one process does: the test writes that process's tgid into config[0]
 * (0: nothing is counted), and from_target() says whether the running task belongs to it. No
 * BTF needed: loads on 4.14. */
#ifndef BPF_HARNESS_TARGET_H
#define BPF_HARNESS_TARGET_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "config.h"

CONFIG_MAP(config, __u32, );

static __always_inline int from_target(void)
{
	__u32 *tgid = config_of(&config);

	return tgid && *tgid && (__u32)(bpf_get_current_pid_tgid() >> 32) == *tgid;
}

#endif
