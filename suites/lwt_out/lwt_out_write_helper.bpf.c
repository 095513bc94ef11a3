/* lwt_out suite: a packet write (helper) in an lwt_out program: the verifier must refuse it. */
#include "lwt_write.h"

SEC("lwt_out")
int out_write_helper(struct __sk_buff *skb)
{
	return write_helper(skb);
}

char LICENSE[] SEC("license") = "GPL";
