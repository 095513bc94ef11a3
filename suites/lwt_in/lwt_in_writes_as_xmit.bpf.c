/* lwt_in suite, the control: the same packet writes as lwt_in_write_*.bpf.c, in lwt_xmit
 * programs, which may write. Both load. */
#include "lwt_write.h"

SEC("lwt_xmit")
int xmit_write_direct(struct __sk_buff *skb)
{
	return write_direct(skb);
}

SEC("lwt_xmit")
int xmit_write_helper(struct __sk_buff *skb)
{
	return write_helper(skb);
}

char LICENSE[] SEC("license") = "GPL";
