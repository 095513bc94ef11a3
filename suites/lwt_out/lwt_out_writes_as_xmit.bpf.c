/* lwt_out suite, the control: the same packet writes as lwt_out_write_*.bpf.c, in lwt_xmit
 * programs, which may write. Both load. */
#include "lwt_write.h"

XMIT_WRITE_PROGRAMS

char LICENSE[] SEC("license") = "GPL";
