//go:build ignore

// ztunnel.c counts what Istio's node proxy (ztunnel) does on a node:
// TCP payload bytes and connections of its sockets, by network namespace
// and leg, and CPU time per thread. A socket or thread is ztunnel's when
// its cgroup v2 id is in ztunnel_cgroups (the agent fills it). Everything
// is summed in per-CPU maps the agent reads on its interval: no per-event
// output, so the hot path is a few loads and one map update.
//
// Only program types that load where kprobes and fentry do not are used:
// tp_btf on sock_send_length / sock_recv_length (sock_sendmsg and
// sock_recvmsg return values, i.e. payload bytes), inet_sock_set_state
// (connections) and sched_switch (per-thread CPU).

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define MSG_PEEK 2

// ztunnel's ports and socket mark (Istio ambient).
#define PORT_OUTBOUND 15001
#define PORT_INBOUND 15006
#define PORT_HBONE 15008
#define ZTUNNEL_MARK 0x539

// Legs; the agent folds LEG_OTHER into app or control by namespace.
#define LEG_OTHER 0
#define LEG_APP 1
#define LEG_HBONE 2

struct flow_key {
	__u32 netns; // network namespace inode
	__u8 leg;
	__u8 pad[3];
};

struct flow_val {
	__u64 bytes_sent;
	__u64 bytes_recv;
	__u64 opened;
	__u64 closed;
};

struct oncpu {
	__u32 tid; // ztunnel thread running on this CPU; 0: none
	__u32 pad;
	__u64 since;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u8);
} ztunnel_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} flows SEC(".maps");

// The flow of each ztunnel connection, kept from open to close: by the
// time a socket reaches TCP_CLOSE its local port has been released.
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct flow_key);
} conn_flow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} thread_ns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct oncpu);
} oncpu SEC(".maps");

static __always_inline __u8 leg_of(const struct sock *sk)
{
	__u16 lport = sk->__sk_common.skc_num;
	__u16 rport = bpf_ntohs(sk->__sk_common.skc_dport);

	if (lport == PORT_HBONE || rport == PORT_HBONE || sk->sk_mark == ZTUNNEL_MARK)
		return LEG_HBONE;
	if (lport == PORT_OUTBOUND || lport == PORT_INBOUND || rport == PORT_OUTBOUND ||
	    rport == PORT_INBOUND)
		return LEG_APP;
	return LEG_OTHER;
}

// key_of fills the flow key of sk and returns 1 when sk is a ztunnel TCP
// socket.
static __always_inline int key_of(const struct sock *sk, struct flow_key *key)
{
	__u16 family = sk->__sk_common.skc_family;
	if ((family != AF_INET && family != AF_INET6) || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	__u64 cg = sk->sk_cgrp_data.cgroup->kn->id;
	if (!bpf_map_lookup_elem(&ztunnel_cgroups, &cg))
		return 0;
	key->netns = sk->__sk_common.skc_net.net->ns.inum;
	key->leg = leg_of(sk);
	return 1;
}

// counters returns this CPU's counters of a flow, creating them.
static __always_inline struct flow_val *counters(const struct flow_key *key)
{
	struct flow_val *v = bpf_map_lookup_elem(&flows, key);
	if (v)
		return v;
	struct flow_val zero = {};
	bpf_map_update_elem(&flows, key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&flows, key);
}

// flow_of returns this CPU's counters of sk's flow, or NULL when sk is not
// a ztunnel TCP socket.
static __always_inline struct flow_val *flow_of(const struct sock *sk)
{
	struct flow_key key = {};
	if (!key_of(sk, &key))
		return 0;
	return counters(&key);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(send_length, struct sock *sk, int ret, int flags)
{
	if (ret <= 0)
		return 0;
	struct flow_val *v = flow_of(sk);
	if (v)
		v->bytes_sent += ret;
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(recv_length, struct sock *sk, int ret, int flags)
{
	if (ret <= 0 || (flags & MSG_PEEK))
		return 0;
	struct flow_val *v = flow_of(sk);
	if (v)
		v->bytes_recv += ret;
	return 0;
}

static __always_inline int was_established(int state)
{
	return state == TCP_ESTABLISHED || state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2 ||
	       state == TCP_CLOSE_WAIT || state == TCP_LAST_ACK || state == TCP_CLOSING ||
	       state == TCP_TIME_WAIT;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	int open = newstate == TCP_ESTABLISHED && !was_established(oldstate);
	int close = newstate == TCP_CLOSE && was_established(oldstate);
	if (!open && !close)
		return 0;
	struct flow_key key = {};
	struct flow_val *v;
	if (open) {
		if (!key_of(sk, &key))
			return 0;
		struct flow_key *slot = bpf_sk_storage_get(&conn_flow, (struct sock *)sk, 0,
							   BPF_SK_STORAGE_GET_F_CREATE);
		if (slot)
			*slot = key;
		v = counters(&key);
		if (v)
			v->opened++;
		return 0;
	}
	// Closing: the flow stored at open (the local port is gone by now);
	// a connection opened before the programs loaded is keyed afresh.
	struct flow_key *stored = bpf_sk_storage_get(&conn_flow, (struct sock *)sk, 0, 0);
	if (stored)
		key = *stored;
	else if (!key_of(sk, &key))
		return 0;
	v = counters(&key);
	if (v)
		v->closed++;
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u32 zero = 0;
	struct oncpu *c = bpf_map_lookup_elem(&oncpu, &zero);
	if (!c)
		return 0;
	// The clock is read only when a ztunnel thread leaves or enters the
	// CPU: most switches on a node are someone else's.
	__u64 now = 0;
	__u32 tid = c->tid;
	if (tid) {
		c->tid = 0;
		if (tid == (__u32)prev->pid) {
			now = bpf_ktime_get_ns();
			__u64 d = now - c->since;
			__u64 *ns = bpf_map_lookup_elem(&thread_ns, &tid);
			if (ns)
				*ns += d;
			else
				bpf_map_update_elem(&thread_ns, &tid, &d, BPF_NOEXIST);
		}
	}
	if (!next->pid)
		return 0;
	__u64 cg = next->cgroups->dfl_cgrp->kn->id;
	if (bpf_map_lookup_elem(&ztunnel_cgroups, &cg)) {
		c->tid = next->pid;
		c->since = now ? now : bpf_ktime_get_ns();
	}
	return 0;
}
