/* lwt_out suite: a packet write (direct) in an lwt_out program: the verifier must refuse it. */
#include "lwt_write.h"

SEC("lwt_out")
int out_write_direct(struct __sk_buff *skb)
{
	return write_direct(skb);
}

char LICENSE[] SEC("license") = "GPL";
