/* lwt_in suite: a packet write (helper) in an lwt_in program: the verifier must refuse it. */
#include "lwt_write.h"

SEC("lwt_in")
int in_write_helper(struct __sk_buff *skb)
{
	return write_helper(skb);
}

char LICENSE[] SEC("license") = "GPL";
