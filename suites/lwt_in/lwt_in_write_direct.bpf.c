/* lwt_in suite: a packet write (direct) in an lwt_in program: the verifier must refuse it. */
#include "lwt_write.h"

SEC("lwt_in")
int in_write_direct(struct __sk_buff *skb)
{
	return write_direct(skb);
}

char LICENSE[] SEC("license") = "GPL";
