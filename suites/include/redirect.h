/* Where a redirecting program sends a packet, filled in by the test after the object is loaded:
 * the interface and the Ethernet header's MACs. The test writes it as
 * u32(ifindex) + mac(dmac) + mac(smac) (harness/index.ts); ifindex 0 means "not configured yet". */
#ifndef BPF_HARNESS_REDIRECT_H
#define BPF_HARNESS_REDIRECT_H

#include <linux/types.h>
#include <linux/if_ether.h>

struct redirect_cfg {
	__u32 ifindex;
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
};

#endif
