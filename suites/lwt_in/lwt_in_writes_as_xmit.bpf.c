/* lwt_in suite, the control: the same packet writes as lwt_in_write_*.bpf.c, in lwt_xmit
 * programs, which may write. Both load. */
#include "lwt_write.h"

XMIT_WRITE_PROGRAMS

char LICENSE[] SEC("license") = "GPL";
