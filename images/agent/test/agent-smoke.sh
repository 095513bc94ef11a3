#!/usr/bin/env bash
# Smoke test of bpf-agent on this host (root, netns + veth, clang, jq).
#   images/agent/test/agent-smoke.sh [path/to/bpf-agent]
# Builds the agent if no path is given, creates two network namespaces joined by a veth pair
# (private addresses inside them only), drives the agent over its stdin/stdout and checks the
# answers. Cleans up after itself. Prints "N passed, N failed".
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
AGENT=${1:-}
WORK=$(mktemp -d /tmp/agent-smoke.XXXXXX)
NSA=agsm_a_$$ NSB=agsm_b_$$
IPA=10.231.77.1 IPB=10.231.77.2
CG=""
PASS=0 FAIL=0

cleanup() {
	[ -n "${AGENT_PID:-}" ] && kill "$AGENT_PID" 2>/dev/null
	ip netns del "$NSA" 2>/dev/null
	ip netns del "$NSB" 2>/dev/null
	ip netns del "${NSA}v" 2>/dev/null
	ip netns del "${NSB}v" 2>/dev/null
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		# move any stray process back and remove the test cgroup
		while read -r p; do echo "$p" >"$(dirname "$CG")/cgroup.procs" 2>/dev/null; done <"$CG/cgroup.procs"
		rmdir "$CG" 2>/dev/null
	fi
	[ -n "${TRACEFS_WAS_UNMOUNTED:-}" ] && umount /sys/kernel/tracing 2>/dev/null
	[ -n "${CG_MOUNTED:-}" ] && umount "$CG_MOUNTED" 2>/dev/null && rmdir "$CG_MOUNTED"
	rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "$AGENT" ]; then
	make -s -C "$HERE/.." OUT="$WORK/build" >&2 || { echo "build failed"; exit 1; }
	AGENT=$WORK/build/bpf-agent
fi

# ---------- BPF test programs ----------
CFL="-O2 -g -target bpf -I/usr/include/$(uname -m)-linux-gnu"
cat >"$WORK/xdp.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } counts SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u64); } pcpu SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, __u32); __type(value, __u32); } h SEC(".maps");
SEC("xdp") int xdp_pass(struct xdp_md *ctx)
{
	__u32 k = 0; __u64 *v = bpf_map_lookup_elem(&counts, &k);
	if (v) __sync_fetch_and_add(v, 1);
	v = bpf_map_lookup_elem(&pcpu, &k);
	if (v) *v += 1;
	return XDP_PASS;
}
SEC("xdp") int xdp_drop(struct xdp_md *ctx)
{
	__u32 k = 1; __u64 *v = bpf_map_lookup_elem(&counts, &k);
	if (v) __sync_fetch_and_add(v, 1);
	return XDP_DROP;
}
char LICENSE[] SEC("license") = "GPL";
C
cat >"$WORK/bad.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int xdp_bad(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	return *(__u32 *)data == 0 ? XDP_DROP : XDP_PASS; /* no bounds check */
}
char LICENSE[] SEC("license") = "GPL";
C
cat >"$WORK/p2.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
/* cnt: 0-2 cgroup_skb, 3 sockops (all callbacks), 4 verdict calls, 5 socket filter, 6 tracepoint,
 * 7 perf_event samples, 8 kprobe, 9 verdict bytes, 10 kretprobe */
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 12); __type(key, __u32); __type(value, __u64); } cnt SEC(".maps");
/* sockops callbacks by skops->op (BPF_SOCK_OPS_*) */
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 32); __type(key, __u32); __type(value, __u64); } ops SEC(".maps");
/* the agent's tgid, written by the test: the tracing programs count only the agent's own events */
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u32); } agent SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_SOCKMAP); __uint(max_entries, 4); __type(key, __u32); __type(value, __u32); } sm SEC(".maps");
static __always_inline void add(__u32 k, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&cnt, &k);
	if (v) __sync_fetch_and_add(v, n);
}
static __always_inline void inc(__u32 k) { add(k, 1); }
static __always_inline int is_agent(void)
{
	__u32 k = 0, *pid = bpf_map_lookup_elem(&agent, &k);
	return pid && *pid && (bpf_get_current_pid_tgid() >> 32) == *pid;
}
SEC("cgroup_skb/egress") int egress_drop(struct __sk_buff *skb) { inc(0); return 0; }
SEC("cgroup_skb/egress") int egress_pass(struct __sk_buff *skb) { inc(1); return 1; }
SEC("cgroup_skb/ingress") int ingress_drop(struct __sk_buff *skb) { inc(2); return 0; }
SEC("cgroup/sock") int sock_mark(struct bpf_sock *sk) { sk->mark = 0x1234; return 1; }
SEC("cgroup/sock") int sock_deny(struct bpf_sock *sk) { return 0; }
SEC("sockops") int sockops_count(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;
	__u64 *v = bpf_map_lookup_elem(&ops, &op);
	if (v) __sync_fetch_and_add(v, 1);
	inc(3);
	return 1;
}
SEC("sk_skb/stream_parser") int parser(struct __sk_buff *skb) { return skb->len; }
SEC("sk_skb/stream_verdict") int verdict(struct __sk_buff *skb) { inc(4); add(9, skb->len); return bpf_sk_redirect_map(skb, &sm, 0, 0); }
SEC("socket") int sock_trunc(struct __sk_buff *skb) { inc(5); return 14; }
SEC("tracepoint/syscalls/sys_enter_getppid") int tp_getppid(void *ctx) { if (is_agent()) inc(6); return 0; }
SEC("kprobe/__x64_sys_getppid") int kp_getppid(void *ctx) { if (is_agent()) inc(8); return 0; }
SEC("kretprobe/__x64_sys_getppid") int krp_getppid(void *ctx) { if (is_agent()) inc(10); return 0; }
SEC("perf_event") int pe_tick(void *ctx) { if (is_agent()) inc(7); return 0; }
char LICENSE[] SEC("license") = "GPL";
C
for f in xdp bad p2; do
	clang $CFL -c "$WORK/$f.bpf.c" -o "$WORK/$f.bpf.o" || { echo "clang $f failed"; exit 1; }
done

# ---------- namespaces ----------
# The pair carries only the test's own packets, so that XDP and packet-socket counts are exact:
# IPv6 is off before the links exist (no router or neighbour solicitations, no MLD reports) and
# each side knows the other's MAC as a permanent neighbour (no ARP).
MACA=02:00:00:77:00:01 MACB=02:00:00:77:00:02
ip netns add "$NSA" && ip netns add "$NSB" || exit 1
for ns in "$NSA" "$NSB"; do
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || exit 1
done
ip link add va address $MACA netns "$NSA" type veth peer name vb address $MACB netns "$NSB" || exit 1
ip -n "$NSA" addr add $IPA/24 dev va
ip -n "$NSB" addr add $IPB/24 dev vb
ip -n "$NSA" neigh replace $IPB lladdr $MACB dev va nud permanent || exit 1
ip -n "$NSB" neigh replace $IPA lladdr $MACA dev vb nud permanent || exit 1
ip -n "$NSA" link set va up; ip -n "$NSB" link set vb up
ip -n "$NSA" link set lo up; ip -n "$NSB" link set lo up

grep -q " /sys/kernel/tracing tracefs" /proc/mounts || grep -q " /sys/kernel/debug debugfs" /proc/mounts || TRACEFS_WAS_UNMOUNTED=1

# ---------- cgroup v2 ----------
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
if [ -z "$CG2" ]; then
	CG_MOUNTED=$(mktemp -d /tmp/agent-cg2.XXXXXX)
	mount -t cgroup2 none "$CG_MOUNTED" && CG2=$CG_MOUNTED
fi
[ -n "$CG2" ] && CG=$CG2/agent-smoke-$$ && mkdir "$CG"

# ---------- driver ----------
coproc AG { exec "$AGENT" 2>"$WORK/agent.stderr"; }
AGENT_PID=$AG_PID  # a copy: bash unsets the coprocess's AG_PID once it has exited
ID=0
# req JSON JQ-CHECK [description]: sends one request, checks the response with a jq expression.
req() {
	local body=$1 check=$2 desc=${3:-$1}
	ID=$((ID + 1))
	local line="{\"id\":$ID,${body#\{}"
	echo "$line" >&"${AG[1]}"
	if ! IFS= read -r -t 60 RESP <&"${AG[0]}"; then
		echo "FAIL (no answer) $desc"; FAIL=$((FAIL + 1)); RESP='{}'; return 1
	fi
	if echo "$RESP" | jq -e --argjson id $ID ".id == \$id and ($check)" >/dev/null 2>&1; then
		PASS=$((PASS + 1)); echo "ok   $desc"
	else
		FAIL=$((FAIL + 1)); echo "FAIL $desc"; echo "     -> ${RESP:0:600}"
	fi
}
raw() { # raw LINE JQ-CHECK DESC: sends a line as is
	echo "$1" >&"${AG[1]}"
	IFS= read -r -t 60 RESP <&"${AG[0]}" || RESP='{}'
	if echo "$RESP" | jq -e "$2" >/dev/null 2>&1; then PASS=$((PASS + 1)); echo "ok   $3"; else FAIL=$((FAIL + 1)); echo "FAIL $3"; echo "     -> ${RESP:0:600}"; fi
}
val() { echo "$RESP" | jq -r "$1"; }
check() { # check DESC COND...
	local d=$1; shift
	if "$@"; then PASS=$((PASS + 1)); echo "ok   $d"; else FAIL=$((FAIL + 1)); echo "FAIL $d"; fi
}
# Byte order in bash alone: these run for every map read, and a pipe of sed and awk costs ~40 ms under load.
revbytes() { local h=$1 r=""; while [ -n "$h" ]; do r=${h:0:2}$r; h=${h:2}; done; printf '%s' "$r"; }
u64() { revbytes "$(printf '%016x' "$1")"; }
le2int() { local r; r=$(revbytes "$1"); echo $((16#$r)); }

echo "== phase 1"
# ncpus is libbpf_num_possible_cpus: the CPUs in /sys/devices/system/cpu/possible ("0-3,8-11"),
# which per-CPU map values are sized by (nproc counts the online ones this process may use; the
# two differ on machines with hotplug slots)
POSSIBLE=$(tr ',' '\n' </sys/devices/system/cpu/possible | awk -F- '{ n += (NF == 2 ? $2 - $1 + 1 : 1) } END { print n }')
req '{"op":"hello"}' '.ok and (.agent|length>0) and .kernel == "'"$(uname -r)"'" and .libbpf == "1.1" and .ncpus == '$POSSIBLE'' "hello: ncpus is the $POSSIBLE possible CPUs"
NCPUS=$(val .ncpus)
req '{"op":"load","path":"'"$WORK/xdp.bpf.o"'","name":"x"}' '.ok and .obj == "x" and (.programs|map(.name)|sort) == ["xdp_drop","xdp_pass"] and (.programs[0].type == "xdp") and (.maps|map(select(.name=="pcpu"))[0].type == "percpu_array")' "load xdp.bpf.o"
req '{"op":"load","path":"'"$WORK/bad.bpf.o"'"}' '.ok == false and .errno == 13 and (.log|test("invalid access to packet")) and (.error|test("xdp_bad"))' "load rejected by the verifier, log has the verifier message"
req '{"op":"load","path":"/nonexistent.o"}' '.ok == false and .errno == 2' "load missing file"
req '{"op":"udp_listen","netns":"'$NSB'","addr":"'$IPB'","port":5555}' '.ok and (.sock|type) == "number"' "udp_listen in b"
US=$(val .sock)

req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"'$IPB'","count":10}' '.ok and .sent == 10 and .replies == 10 and .replyBytes == 320' "icmp x10, no XDP"
req '{"op":"attach_xdp","obj":"x","prog":"xdp_pass","ifname":"vb","netns":"'$NSB'","mode":"generic"}' '.ok and .mode == "generic"' "attach_xdp generic"
req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"'$IPB'","count":10,"size":100}' '.ok and .sent == 10 and .replies == 10 and .replyBytes == 1000' "icmp x10 through xdp_pass (generic)"
req '{"op":"send","netns":"'$NSA'","proto":"udp","dst":"'$IPB'","dport":5555,"count":7,"size":48}' '.ok and .sent == 7 and .replies == 0' "udp x7"
req '{"op":"sock_stats","sock":'$US'}' '.ok and .packets == 7 and .bytes == 336 and (.lengths|length) == 7 and (.lengths|all(. == 48))' "sock_stats counts 7 datagrams"
req '{"op":"send","netns":"'$NSA'","proto":"tcp","dst":"'$IPB'","dport":9,"count":5,"size":0}' '.ok and .sent == 5 and .replies == 5' "tcp SYN x5 to closed port -> 5 RST"
req '{"op":"send","netns":"'$NSA'","proto":"tcp","dst":"'$IPB'","dport":9,"count":3,"size":20,"src":"'$IPA'","sport":41000}' '.ok and .sent == 3 and .replies == 3' "tcp SYN with payload and src"
req '{"op":"map_lookup","obj":"x","map":"counts","key":"00000000"}' '.ok and (.value|type) == "string"' "map_lookup counts[0]"
C0=$(le2int "$(val .value)")
# 10 icmp + 7 udp + 5 + 3 tcp: nothing else reaches vb (no IPv6, no ARP)
[ "$C0" = 25 ] && { PASS=$((PASS+1)); echo "ok   xdp_pass counted exactly the 25 packets sent"; } || { FAIL=$((FAIL+1)); echo "FAIL xdp_pass counted $C0 packets, not the 25 sent"; }
req '{"op":"map_lookup","obj":"x","map":"pcpu","key":"00000000"}' '.ok and .value == null and (.values|length) == '$NCPUS'' "map_lookup per-CPU gives one value per CPU"
req '{"op":"map_dump","obj":"x","map":"pcpu"}' '.ok and (.entries|length) == 2 and (.entries[0].values|length) == '$NCPUS'' "map_dump per-CPU"
req '{"op":"map_update","obj":"x","map":"pcpu","key":"01000000","value":"'"$(u64 7)"'"}' '.ok' "map_update per-CPU (one value for all CPUs)"
req '{"op":"map_lookup","obj":"x","map":"pcpu","key":"01000000"}' '.ok and (.values|all(. == "0700000000000000"))' "per-CPU value on every CPU"
req '{"op":"map_update","obj":"x","map":"h","key":"05000000","value":"01020304"}' '.ok' "map_update hash"
req '{"op":"map_update","obj":"x","map":"h","key":"05000000","value":"01020304","flags":1}' '.ok == false and .errno == 17' "map_update BPF_NOEXIST on existing key -> EEXIST"
req '{"op":"map_dump","obj":"x","map":"h"}' '.ok and .entries == [{"key":"05000000","value":"01020304"}]' "map_dump hash"
req '{"op":"map_delete","obj":"x","map":"h","key":"05000000"}' '.ok' "map_delete"
req '{"op":"map_lookup","obj":"x","map":"h","key":"05000000"}' '.ok and .value == null' "map_lookup absent -> null"
req '{"op":"map_update","obj":"x","map":"counts","key":"01000000","value":"00"}' '.ok == false and .errno == 22' "map_update wrong value size"

req '{"op":"attach_xdp","obj":"x","prog":"xdp_drop","ifname":"vb","netns":"'$NSB'","mode":"generic"}' '.ok and .mode == "generic"' "attach_xdp xdp_drop generic (replace)"
req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"'$IPB'","count":5}' '.ok and .sent == 5 and .replies == 0' "icmp x5 dropped"
req '{"op":"send","netns":"'$NSA'","proto":"udp","dst":"'$IPB'","dport":5555,"count":5}' '.ok and .sent == 5' "udp x5 (dropped)"
req '{"op":"sock_stats","sock":'$US',"waitMs":300}' '.ok and .packets == 0' "sock_stats 0 under XDP_DROP"
req '{"op":"send","netns":"'$NSA'","proto":"tcp","dst":"'$IPB'","count":5}' '.ok and .sent == 5 and .replies == 0' "tcp x5 dropped"
# judged: the reply wait's exact end is the program's own count (xdp_drop's counts[1])
req '{"op":"map_lookup","obj":"x","map":"counts","key":"01000000"}' '.ok' "xdp_drop's count before the judged sends"
D0=$(le2int "$(val .value)")
T0=$(date +%s%N)
req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"'$IPB'","count":5,"waitMs":5000,"obj":"x","map":"counts","key":"01000000","judged":'$((D0 + 5))'}' '.ok and .sent == 5 and .replies == 0' "icmp x5 dropped, judged by xdp_drop's count"
MS=$((($(date +%s%N) - T0) / 1000000))
check "the judged send ended once xdp_drop had counted all 5, not after its 5 s window ($MS ms)" [ "$MS" -lt 5000 ]
T0=$(date +%s%N)
req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"'$IPB'","count":2,"waitMs":400,"obj":"x","map":"counts","key":"01000000","judged":'$((D0 + 1000))'}' '.ok and .sent == 2 and .replies == 0' "a judged count that never gets there"
MS=$((($(date +%s%N) - T0) / 1000000))
check "... waits out the whole 400 ms window ($MS ms)" [ "$MS" -ge 400 ]
req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"'$IPB'","count":1,"judged":1}' '.ok == false and .errno == 22' "judged without a map -> EINVAL"
req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"'$IPB'","count":1,"obj":"x","map":"counts","key":"01","judged":1}' '.ok == false and .errno == 22 and (.error|test("key is 1 bytes"))' "judged with a 1-byte key -> EINVAL"
req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"'$IPB'","count":1,"obj":"x","map":"h","key":"05000000","judged":1}' '.ok and .sent == 1 and .replies == 0' "judged by a 4-byte value whose key is absent (counts 0)"
req '{"op":"detach_xdp","ifname":"vb","netns":"'$NSB'","mode":"generic"}' '.ok' "detach_xdp generic"
req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"'$IPB'","count":4,"waitMs":1000}' '.ok and .replies == 4' "icmp x4 after detach"

req '{"op":"attach_xdp","obj":"x","prog":"xdp_pass","ifname":"vb","netns":"'$NSB'","mode":"native"}' '.ok and .mode == "native"' "attach_xdp native"
req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"'$IPB'","count":10}' '.ok and .replies == 10' "icmp x10 through native xdp_pass"
req '{"op":"send","netns":"'$NSA'","proto":"udp","dst":"'$IPB'","dport":5555,"count":20,"size":0,"intervalUs":1000}' '.ok and .sent == 20' "udp x20 (size 0, 1 ms interval) native"
req '{"op":"sock_stats","sock":'$US'}' '.ok and .packets == 20 and .bytes == 0' "sock_stats 20 empty datagrams"
req '{"op":"attach_xdp","obj":"x","prog":"xdp_drop","ifname":"vb","netns":"'$NSB'","mode":"native"}' '.ok and .mode == "native"' "attach_xdp native xdp_drop"
req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"'$IPB'","count":5}' '.ok and .replies == 0' "icmp dropped (native)"
req '{"op":"send","netns":"'$NSA'","proto":"tcp","dst":"'$IPB'","count":5}' '.ok and .replies == 0' "tcp dropped (native)"
req '{"op":"detach_xdp","ifname":"vb","netns":"'$NSB'","mode":"any"}' '.ok' "detach_xdp any (native attached)"
req '{"op":"attach_xdp","obj":"x","prog":"xdp_pass","ifname":"vb","netns":"'$NSB'","mode":"any"}' '.ok and .mode == "native"' "attach_xdp any -> native on veth"
req '{"op":"send","netns":"'$NSA'","proto":"tcp","dst":"'$IPB'","count":50,"waitMs":500}' '.ok and .sent == 50 and .replies == 50' "tcp x50 -> 50 RST"
req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"'$IPB'","count":1000,"size":64}' '.ok and .sent == 1000 and .replies == 1000' "icmp x1000 exact"
req '{"op":"send","netns":"'$NSA'","proto":"udp","dst":"'$IPB'","dport":5555,"count":5000,"size":16}' '.ok and .sent == 5000' "udp x5000"
req '{"op":"sock_stats","sock":'$US'}' '.ok and .packets == 5000 and .bytes == 80000 and (.lengths|length) == 1000' "sock_stats 5000 (lengths capped at 1000)"
# Every packet that reached vb while an XDP program was on it, and nothing else:
# xdp_pass 25 (generic) + 10 + 20 (native) + 50 + 1000 + 5000 (any); xdp_drop 15 + 8 judged (generic) + 10 (native).
req '{"op":"map_dump","obj":"x","map":"counts"}' '.ok and ([.entries[] | select(.key == "00000000" or .key == "01000000") | .value] == ["d917000000000000", "2100000000000000"])' "xdp_pass ran for exactly 6105 packets, xdp_drop for 33"
req '{"op":"map_lookup","obj":"x","map":"pcpu","key":"00000000"}' '.ok and (.values|length) == '$NCPUS'' "read xdp_pass's per-CPU counts"
PSUM=0; for v in $(val '.values[]'); do PSUM=$((PSUM + $(le2int "$v"))); done
check "xdp_pass's per-CPU counts add up to the same 6105" [ "$PSUM" = 6105 ]
# judged by a per-CPU count: the sum over every CPU's value, whichever CPUs ran the program
T0=$(date +%s%N)
req '{"op":"send","netns":"'$NSA'","proto":"udp","dst":"'$IPB'","dport":5555,"count":30,"waitMs":5000,"obj":"x","map":"pcpu","key":"00000000","judged":6135}' '.ok and .sent == 30 and .replies == 0' "udp x30 judged by xdp_pass's per-CPU count"
MS=$((($(date +%s%N) - T0) / 1000000))
check "... ended once the per-CPU counts summed to 6135, not after its 5 s window ($MS ms)" [ "$MS" -lt 5000 ]
req '{"op":"sock_stats","sock":'$US',"expect":30}' '.ok and .packets == 30' "sock_stats: the 30 judged datagrams arrived"

req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"10.99.99.99","count":1}' '.ok == false and .errno == 101' "send with no route -> ENETUNREACH"
req '{"op":"send","netns":"'$NSA'","proto":"tcp","dst":"10.99.99.99","count":1}' '.ok == false and .errno == 101' "tcp send with no route -> ENETUNREACH"
req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"not-an-ip"}' '.ok == false and .errno == 22' "send bad address"
req '{"op":"attach_xdp","obj":"x","prog":"xdp_pass","ifname":"veth1","netns":"'$NSB'","mode":"generic"}' '.ok == false and .errno == 19 and (.error|test("ifindex for veth1 in netns"))' "attach_xdp unknown ifname"
req '{"op":"attach_xdp","obj":"x","prog":"nope","ifname":"vb","netns":"'$NSB'","mode":"generic"}' '.ok == false and .errno == 2' "attach_xdp unknown prog"
req '{"op":"attach_xdp","obj":"x","prog":"xdp_pass","ifname":"vb","netns":"nosuchns","mode":"generic"}' '.ok == false and .errno == 2 and (.error|test("nosuchns"))' "attach_xdp unknown netns"
req '{"op":"udp_listen","netns":"'$NSB'","addr":"'$IPB'","port":5555}' '.ok == false and .errno == 98' "udp_listen on a busy port -> EADDRINUSE"
req '{"op":"sock_close","sock":'$US'}' '.ok' "sock_close"
req '{"op":"sock_stats","sock":'$US'}' '.ok == false and .errno == 2' "sock_stats on closed sock"
req '{"op":"unload","obj":"x"}' '.ok' "unload (detaches its XDP program)"
XDPLEFT=$(ip -n "$NSB" link show vb | grep -c 'xdp')
[ "$XDPLEFT" = 0 ] && { PASS=$((PASS+1)); echo "ok   no XDP left on vb after unload"; } || { FAIL=$((FAIL+1)); echo "FAIL XDP still on vb after unload"; }
req '{"op":"map_lookup","obj":"x","map":"counts","key":"00000000"}' '.ok == false and .errno == 2' "map_lookup on unloaded obj"
raw 'this is not json' '.ok == false and .errno == 22' "malformed JSON"
raw '{"id":77,"op":"frobnicate"}' '.ok == false and .id == 77 and (.error|test("frobnicate"))' "unknown op"
raw '{"id":78,"op":"send","dst":{"a":1}}' '.ok == false and .id == 78' "nested value rejected"
raw '{"id":79,"op":"hello"}' '.ok and .id == 79' "still alive after bad input"

echo "== phase 2"
cnt() { # cnt INDEX: value of p2 cnt[INDEX]
	req '{"op":"map_lookup","obj":"p2","map":"cnt","key":"'"$(printf '%02x000000' "$1")"'"}' '.ok' "read cnt[$1]" >/dev/null
	le2int "$(val .value)"
}
req '{"op":"load","path":"'"$WORK/p2.bpf.o"'","name":"p2"}' '.ok and (.programs|length) == 13' "load p2.bpf.o (cgroup, sockops, sk_skb, socket, tracepoint, kprobe, kretprobe, perf_event)"
# The tracing programs count only the agent's events: its pid (the syscalls op reports it) goes into `agent`.
req '{"op":"syscalls","name":"getppid","count":0}' '.ok and .calls == 0 and .pid == '$AGENT_PID' and .tid == .pid' "syscalls count 0: the agent's pid"
req '{"op":"map_update","obj":"p2","map":"agent","key":"00000000","value":"'"$(u64 "$AGENT_PID" | cut -c1-8)"'"}' '.ok' "the agent's pid into the tracing programs' filter"
if [ -n "$CG" ]; then
	req '{"op":"attach_cgroup","obj":"p2","prog":"egress_drop","cgroup":"'$CG'","attachType":"cgroup_inet_egress"}' '.ok' "attach_cgroup egress_drop"
	req '{"op":"send","netns":"'$NSA'","cgroup":"'$CG'","proto":"udp","dst":"'$IPB'","dport":5556,"count":6}' '.ok and .sent == 0 and .sendErrors == 6' "udp from the cgroup: all 6 refused by egress_drop"
	check "egress_drop saw 6 packets" [ "$(cnt 0)" = 6 ]
	req '{"op":"send","netns":"'$NSA'","proto":"icmp","dst":"'$IPB'","count":3}' '.ok and .replies == 3' "icmp from outside the cgroup unaffected"
	req '{"op":"send","netns":"'$NSA'","cgroup":"'$CG'","proto":"icmp","dst":"'$IPB'","count":3}' '.ok and .replies == 0' "icmp from the cgroup gets no replies"
	req '{"op":"detach_cgroup","obj":"p2","prog":"egress_drop","cgroup":"'$CG'","attachType":"cgroup_inet_egress"}' '.ok' "detach_cgroup egress_drop"
	req '{"op":"detach_cgroup","obj":"p2","prog":"egress_drop","cgroup":"'$CG'","attachType":"cgroup_inet_egress"}' '.ok == false and .errno == 2' "detach_cgroup again -> ENOENT"
	req '{"op":"attach_cgroup","obj":"p2","prog":"egress_pass","cgroup":"'$CG'","attachType":"cgroup_inet_egress"}' '.ok' "attach_cgroup egress_pass"
	req '{"op":"send","netns":"'$NSA'","cgroup":"'$CG'","proto":"icmp","dst":"'$IPB'","count":4}' '.ok and .sent == 4 and .replies == 4' "icmp x4 from the cgroup through egress_pass"
	check "egress_pass saw 4 packets" [ "$(cnt 1)" = 4 ]
	req '{"op":"detach_cgroup","obj":"p2","prog":"egress_pass","cgroup":"'$CG'","attachType":"cgroup_inet_egress"}' '.ok' "detach_cgroup egress_pass"

	req '{"op":"attach_cgroup","obj":"p2","prog":"ingress_drop","cgroup":"'$CG'","attachType":"cgroup_inet_ingress"}' '.ok' "attach_cgroup ingress_drop"
	req '{"op":"udp_listen","netns":"'$NSB'","port":6001,"cgroup":"'$CG'"}' '.ok' "udp_listen created inside the cgroup"
	S_IN=$(val .sock)
	req '{"op":"udp_listen","netns":"'$NSB'","port":6002}' '.ok' "udp_listen outside the cgroup"
	S_OUT=$(val .sock)
	req '{"op":"send","netns":"'$NSA'","proto":"udp","dst":"'$IPB'","dport":6001,"count":5}' '.ok and .sent == 5' "udp x5 to the cgroup socket"
	req '{"op":"send","netns":"'$NSA'","proto":"udp","dst":"'$IPB'","dport":6002,"count":5}' '.ok and .sent == 5' "udp x5 to the other socket"
	req '{"op":"sock_stats","sock":'$S_IN'}' '.ok and .packets == 0' "cgroup socket got nothing (ingress_drop)"
	req '{"op":"sock_stats","sock":'$S_OUT'}' '.ok and .packets == 5' "other socket got 5"
	check "ingress_drop saw 5 packets" [ "$(cnt 2)" = 5 ]
	req '{"op":"detach_cgroup","obj":"p2","prog":"ingress_drop","cgroup":"'$CG'","attachType":"cgroup_inet_ingress"}' '.ok' "detach_cgroup ingress_drop"

	req '{"op":"attach_cgroup","obj":"p2","prog":"sock_mark","cgroup":"'$CG'","attachType":"cgroup_inet_sock_create"}' '.ok' "attach_cgroup sock_mark (cgroup/sock)"
	req '{"op":"sock_create_test","cgroup":"'$CG'","family":"inet","type":"dgram"}' '.ok and .created and .mark == 4660 and .boundDev == ""' "socket created in the cgroup has mark 0x1234"
	req '{"op":"sock_create_test","family":"inet","type":"dgram"}' '.ok and .created and .mark == 0' "socket outside the cgroup has no mark"
	req '{"op":"attach_cgroup","obj":"p2","prog":"sock_deny","cgroup":"'$CG'","attachType":"cgroup_inet_sock_create"}' '.ok' "attach_cgroup sock_deny (replaces)"
	req '{"op":"sock_create_test","cgroup":"'$CG'","family":"inet6","type":"stream"}' '.ok and .created == false and .createErrno == 1' "socket creation denied -> EPERM"
	req '{"op":"detach_cgroup","obj":"p2","prog":"sock_deny","cgroup":"'$CG'","attachType":"cgroup_inet_sock_create"}' '.ok' "detach_cgroup sock_deny"

	req '{"op":"attach_cgroup","obj":"p2","prog":"sockops_count","cgroup":"'$CG'","attachType":"cgroup_sock_ops"}' '.ok' "attach_cgroup sockops"
	req '{"op":"tcp_pair","netns":"'$NSB'","port":7000,"count":2,"cgroup":"'$CG'"}' '.ok and (.pairs|length) == 2 and .port == 7000' "tcp_pair x2 in the cgroup"
	# Two connections made in the cgroup, both ends in it, and one listener. The callbacks a
	# program gets without setting any bpf_sock_ops_cb_flags (4.13+): per connection one
	# TIMEOUT_INIT (1), RWND_INIT (2) and NEEDS_ECN (6) on each side (the client's connect, the
	# server's SYN), one TCP_CONNECT_CB (3), one ACTIVE_ESTABLISHED (4) and one PASSIVE_ESTABLISHED
	# (5); and TCP_LISTEN_CB (11) once for the listen(), on 4.17 and later. Nothing else.
	opn() { req '{"op":"map_lookup","obj":"p2","map":"ops","key":"'"$(printf '%02x000000' "$1")"'"}' '.ok' "read ops[$1]" >/dev/null; le2int "$(val .value)"; }
	OPSUM=0 OPS=""
	for o in $(seq 0 31); do n=$(opn "$o"); OPSUM=$((OPSUM + n)); [ "$n" = 0 ] || OPS="$OPS op$o=$n"; done
	echo "     -> sockops callbacks:$OPS"
	LISTEN_CB=$(uname -r | awk -F. '{ print ($1 > 4 || ($1 == 4 && $2 >= 17)) ? 1 : 0 }')
	check "sockops: for the 2 connections exactly 4 TIMEOUT_INIT, 4 RWND_INIT, 2 TCP_CONNECT_CB, 2 ACTIVE_ESTABLISHED, 2 PASSIVE_ESTABLISHED, 4 NEEDS_ECN, $LISTEN_CB TCP_LISTEN_CB" [ "$(opn 1) $(opn 2) $(opn 3) $(opn 4) $(opn 5) $(opn 6) $(opn 11)" = "4 4 2 2 2 4 $LISTEN_CB" ]
	check "sockops: no other callback, and the program ran $((18 + LISTEN_CB)) times in all" [ "$OPSUM $(cnt 3)" = "$((18 + LISTEN_CB)) $((18 + LISTEN_CB))" ]
	req '{"op":"detach_cgroup","obj":"p2","prog":"sockops_count","cgroup":"'$CG'","attachType":"cgroup_sock_ops"}' '.ok' "detach_cgroup sockops"
	req '{"op":"send","netns":"'$NSA'","cgroup":"/nonexistent/cg","proto":"icmp","dst":"'$IPB'"}' '.ok == false and .errno == 2 and (.error|test("cgroup.procs"))' "send with a bad cgroup path"
else
	echo "skip cgroup tests: no cgroup v2"
fi

req '{"op":"tcp_pair","netns":"'$NSA'","count":1}' '.ok and (.pairs|length) == 1' "tcp_pair in netns a (ephemeral port)"
PC=$(val '.pairs[0].client') PS=$(val '.pairs[0].server')
req '{"op":"sock_write","sock":'$PC',"data":"hello\n\u00e9"}' '.ok and .written == 8' "sock_write"
req '{"op":"sock_read","sock":'$PS',"waitMs":100}' '.ok and .data == "hello\n\u00e9" and .bytes == 8' "sock_read gets the same bytes"
req '{"op":"attach_cgroup","obj":"p2","prog":"parser","map":"sm","attachType":"sk_skb_stream_parser"}' '.ok' "attach sk_skb stream_parser to sockmap"
req '{"op":"attach_cgroup","obj":"p2","prog":"verdict","map":"sm","attachType":"sk_skb_stream_verdict"}' '.ok' "attach sk_skb stream_verdict to sockmap"
req '{"op":"sockmap_add","obj":"p2","map":"sm","key":0,"sock":'$PS'}' '.ok' "sockmap_add server socket"
req '{"op":"sock_write","sock":'$PC',"data":"ping"}' '.ok and .written == 4' "client writes ping"
req '{"op":"sock_read","sock":'$PC',"waitMs":300}' '.ok and .data == "ping"' "verdict redirected it back to the client (echo)"
check "verdict ran once, for the 4 bytes of ping" [ "$(cnt 4) $(cnt 9)" = "1 4" ]
req '{"op":"detach_cgroup","obj":"p2","prog":"verdict","map":"sm","attachType":"sk_skb_stream_verdict"}' '.ok' "detach sk_skb verdict"
req '{"op":"detach_cgroup","obj":"p2","prog":"parser","map":"sm","attachType":"sk_skb_stream_parser"}' '.ok' "detach sk_skb parser"
req '{"op":"sock_close","sock":'$PC'}' '.ok' "close client"

req '{"op":"sock_open","netns":"'$NSB'","kind":"udp","port":6010,"obj":"p2","prog":"sock_trunc"}' '.ok' "sock_open udp with SO_ATTACH_BPF"
SU=$(val .sock)
req '{"op":"sock_open","netns":"'$NSB'","kind":"packet","ifname":"vb"}' '.ok' "sock_open packet on vb"
SP=$(val .sock)
req '{"op":"send","netns":"'$NSA'","proto":"udp","dst":"'$IPB'","dport":6010,"count":5,"size":100}' '.ok and .sent == 5' "udp x5 size 100"
req '{"op":"sock_stats","sock":'$SU'}' '.ok and .packets == 5 and (.lengths|all(. == 6))' "socket filter trimmed each datagram to 14 bytes (6 payload)"
# the 5 frames in (14 + 20 + 8 + 100 bytes) and nothing out: the socket is listening, so no ICMP
# error, and the pair carries no ARP or IPv6
req '{"op":"sock_stats","sock":'$SP'}' '.ok and .packets == 5 and (.lengths|all(. == 142))' "packet socket saw exactly the 5 frames of 142 bytes"
req '{"op":"sock_open","netns":"'$NSB'","kind":"packet","ifname":"nope0"}' '.ok == false and .errno == 19' "sock_open packet on a missing device"

req '{"op":"attach_tracepoint","obj":"p2","prog":"tp_getppid","category":"syscalls","name":"sys_enter_getppid"}' '.ok and (.link|type) == "number"' "attach_tracepoint syscalls/sys_enter_getppid"
TPL=$(val .link)
req '{"op":"syscalls","name":"getppid","count":20}' '.ok and .calls == 20' "the agent makes 20 getppid calls"
python3 -c 'import os
for _ in range(20): os.getppid()' # another process's calls: the filter leaves them out
check "tracepoint counted exactly the agent's 20 getppid calls" [ "$(cnt 6)" = 20 ]
req '{"op":"detach","link":'$TPL'}' '.ok' "detach tracepoint link"
req '{"op":"syscalls","name":"getppid","count":5}' '.ok and .calls == 5' "5 more getppid calls after detach"
check "no counts after detach" [ "$(cnt 6)" = 20 ]
req '{"op":"attach_tracepoint","obj":"p2","prog":"tp_getppid","category":"nope","name":"nope"}' '.ok == false and .errno == 2' "attach_tracepoint unknown -> ENOENT"

read -r RUN0 _ SL0 </proc/$AGENT_PID/schedstat
req '{"op":"attach_perf_event","obj":"p2","prog":"pe_tick","freq":1000,"event":"cpu-clock"}' '.ok and .cpus == '$(nproc)'' "attach_perf_event cpu-clock 1000 Hz on every online CPU"
PEL=$(val .link)
timeout 0.5 sh -c 'while :; do :; done' # another process busy: the filter leaves its samples out
req '{"op":"syscalls","name":"getpid","count":2000000}' '.ok and .calls == 2000000' "the agent busy with 2000000 getpid calls"
req '{"op":"detach","link":'$PEL'}' '.ok' "detach perf_event link"
read -r RUN1 _ SL1 </proc/$AGENT_PID/schedstat
PE=$(cnt 7) RUNMS=$(( (RUN1 - RUN0) / 1000000 )) SLICES=$((SL1 - SL0))
echo "     -> $PE samples of the agent; it ran $RUNMS ms in $SLICES slices while the events were open"
# A sampling count is not exact, but it is bounded. cpu-clock at 1000 Hz is a fixed 1 ms period
# (the kernel turns the frequency of this software event into a period), one hrtimer per CPU firing
# on a 1 ms grid whatever runs there, and pe_tick counts a tick only when the agent is the current
# task. The agent is single-threaded: in each stretch of length L it runs on one CPU it can catch at
# most floor(L / 1 ms) + 1 ticks, so in all at most its run time in ms plus the number of times it
# was scheduled in (/proc/PID/schedstat: run ns, wait ns, timeslices). A tenth more is allowed for
# ticks a hypervisor delivers late (a late timer fires once when the vCPU runs again, possibly
# in a stretch whose time went to steal). Ticks can be lost, never added: at least half the run
# time in ms. The other process's 500 ms busy loop and both CPUs' idle ticks (about 2000) are far
# outside these bounds if the tgid filter breaks, and 0 is outside them if the program never runs.
PE_LO=$((RUNMS / 2)) PE_HI=$((RUNMS + SLICES + RUNMS / 10))
check "perf_event: $PE samples of the agent, in [$PE_LO, $PE_HI] for its $RUNMS ms run in $SLICES slices" [ "$RUNMS" -ge 100 -a "$PE" -ge "$PE_LO" -a "$PE" -le "$PE_HI" ]
req '{"op":"detach","link":'$PEL'}' '.ok == false and .errno == 2' "detach unknown link"

# kprobes: through the kprobe PMU, or tracefs kprobe_events (attach_tracepoint above mounted tracefs).
# Where the kernel's config is readable it must agree, so a kernel with kprobes cannot take the
# "no kprobes" branch by a failed detection.
KPROBES=0
[ -e /sys/bus/event_source/devices/kprobe/type ] || [ -e /sys/kernel/tracing/kprobe_events ] || [ -e /sys/kernel/debug/tracing/kprobe_events ] && KPROBES=1
if [ -r /proc/config.gz ]; then
	check "kprobe support found ($KPROBES) as the kernel config says" [ "$(zcat /proc/config.gz | grep -c '^CONFIG_KPROBES=y')" = "$KPROBES" ]
fi
if [ "$KPROBES" = 1 ]; then
	req '{"op":"attach_kprobe","obj":"p2","prog":"kp_getppid","func":"__x64_sys_getppid"}' '.ok and (.link|type) == "number" and (.legacy|type) == "boolean"' "attach_kprobe __x64_sys_getppid"
	KPL=$(val .link)
	req '{"op":"syscalls","name":"getppid","count":5}' '.ok and .calls == 5' "the agent makes 5 getppid calls"
	python3 -c 'import os
for _ in range(5): os.getppid()' # another process's: left out
	check "kprobe counted exactly the agent's 5 calls" [ "$(cnt 8)" = 5 ]
	req '{"op":"detach","link":'$KPL'}' '.ok' "detach kprobe link"
	req '{"op":"syscalls","name":"getppid","count":3}' '.ok' "3 getppid calls after detach"
	check "no kprobe counts after detach" [ "$(cnt 8)" = 5 ]
	# the kernel's answer for a symbol it cannot find (register_kprobe: -ENOENT)
	req '{"op":"attach_kprobe","obj":"p2","prog":"kp_getppid","func":"no_such_function_xyz"}' '.ok == false and .errno == 2 and (.error|test("no_such_function_xyz"))' "attach_kprobe on a missing function -> ENOENT"
	req '{"op":"attach_kprobe","obj":"p2","prog":"krp_getppid","func":"__x64_sys_getppid","retprobe":true}' '.ok and (.link|type) == "number" and (.legacy|type) == "boolean"' "attach_kretprobe __x64_sys_getppid"
	KRL=$(val .link)
	req '{"op":"syscalls","name":"getppid","count":7}' '.ok and .calls == 7' "the agent makes 7 getppid calls"
	check "kretprobe counted exactly the agent's 7 returns" [ "$(cnt 10)" = 7 ]
	req '{"op":"detach","link":'$KRL'}' '.ok' "detach kretprobe link"
else
	# No kprobe interface at all (CONFIG_KPROBES off): the kernel has nothing to answer, so the
	# agent fails before asking it, with EOPNOTSUPP, and says whether the function exists.
	echo "skip attach_kprobe and attach_kretprobe success cases: kernel without kprobes"
	req '{"op":"attach_kprobe","obj":"p2","prog":"kp_getppid","func":"no_such_function_xyz"}' '.ok == false and .errno == 95 and (.error|test("kprobe on no_such_function_xyz: kernel has no kprobe support")) and (.error|test("not in /proc/kallsyms"))' "attach_kprobe on a missing function, kernel without kprobes -> EOPNOTSUPP"
	req '{"op":"attach_kprobe","obj":"p2","prog":"krp_getppid","func":"__x64_sys_getppid","retprobe":true}' '.ok == false and .errno == 95 and (.error|test("kretprobe on __x64_sys_getppid: kernel has no kprobe support")) and (.error|test("kallsyms")|not)' "attach_kretprobe, kernel without kprobes -> EOPNOTSUPP (the function exists)"
fi
if [ -n "$CG" ]; then
	req '{"op":"attach_cgroup","obj":"p2","prog":"egress_drop","cgroup":"'$CG'","attachType":"cgroup_inet_egress"}' '.ok' "attach_cgroup egress_drop (left attached)"
fi
req '{"op":"unload","obj":"p2"}' '.ok' "unload p2"
if [ -n "$CG" ]; then
	req '{"op":"send","netns":"'$NSA'","cgroup":"'$CG'","proto":"icmp","dst":"'$IPB'","count":3}' '.ok and .sent == 3 and .replies == 3' "unload detached the cgroup program"
fi
VA=${NSA}v VB=${NSB}v
req '{"op":"veth_pair","netnsA":"'$VA'","ifnameA":"smva","ipA":"10.231.78.1","macA":"02:00:00:aa:00:01","netnsB":"'$VB'","ifnameB":"smvb","ipB":"10.231.78.2","macB":"02:00:00:aa:00:02"}' '.ok' "veth_pair: two namespaces and a pair over netlink"
check "veth_pair: each end in its namespace with its MAC, both up" [ "$(ip -n "$VA" -j link show smva | jq -r '.[0].address + " " + .[0].operstate') $(ip -n "$VB" -j link show smvb | jq -r '.[0].address + " " + .[0].operstate')" = "02:00:00:aa:00:01 UP 02:00:00:aa:00:02 UP" ]
check "veth_pair: the address with its prefix" [ "$(ip -n "$VB" -j addr show dev smvb | jq -r '.[0].addr_info[] | select(.family=="inet") | .local + "/" + (.prefixlen|tostring)')" = "10.231.78.2/24" ]
check "veth_pair: the peer is a permanent neighbour" [ "$(ip -n "$VA" -j neigh show dev smva | jq -r '.[0].dst + " " + .[0].lladdr + " " + (.[0].state|join(","))')" = "10.231.78.2 02:00:00:aa:00:02 PERMANENT" ]
check "veth_pair: IPv6 off in both" [ "$(ip netns exec "$VA" cat /proc/sys/net/ipv6/conf/all/disable_ipv6)$(ip netns exec "$VB" cat /proc/sys/net/ipv6/conf/smvb/disable_ipv6)" = "11" ]
req '{"op":"send","netns":"'$VA'","proto":"icmp","dst":"10.231.78.2","count":4}' '.ok and .sent == 4 and .replies == 4' "veth_pair: traffic crosses the pair"
req '{"op":"veth_pair","netnsA":"'$VA'","ifnameA":"smva","ipA":"10.231.78.1","macA":"02:00:00:aa:00:01","netnsB":"x'$VB'","ifnameB":"smvb","ipB":"10.231.78.2","macB":"02:00:00:aa:00:02"}' '.ok == false and .errno == 17' "veth_pair: an existing namespace fails with EEXIST"
req '{"op":"run","cmd":"echo out; echo err >&2; exit 3"}' '.ok and .code == 3 and .stdout == "out\n" and .stderr == "err\n"' "run: exit code, stdout and stderr apart"
req '{"op":"run","cmd":"wc -c","stdin":"hello"}' '.ok and .code == 0 and (.stdout|tonumber) == 5' "run: stdin reaches the command"
req '{"op":"run","cmd":"ls /proc/self/fd"}' '.ok and (.stdout|split("\n")|map(select(length>0))) == ["0","1","2","3"]' "run: the command holds none of the agent's descriptors (only 0-2 and ls's own)"
req '{"op":"run","cmd":"sleep 30.5 & sleep 30.5","timeoutMs":300}' '.ok == false and .errno == 110' "run: a command past its timeout fails with ETIMEDOUT"
req '{"op":"run","cmd":"pgrep -f \"slee[p] 30.5\" || echo none"}' '.ok and .stdout == "none\n"' "run: the timeout ended the command's background jobs too"
req '{"op":"run","cmd":"ip -V; tc -V"}' '.ok and .code == 0 and (.stdout|test("^ip utility, iproute2.*\ntc utility, iproute2"))' "run: ip and tc are iproute2's programs, not busybox's applets"
raw '{"id":999,"op":"hello"}' '.ok' "alive at the end"

exec {AG[1]}>&-
wait "$AGENT_PID"; RC=$?
check "agent exits 0 on EOF" [ "$RC" = 0 ]
AGENT_PID=""
if [ -s "$WORK/agent.stderr" ]; then echo "agent stderr:"; sed 's/^/    /' "$WORK/agent.stderr" | head -20; fi
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
