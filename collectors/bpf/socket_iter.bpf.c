// SPDX-License-Identifier: GPL-2.0
/* portwatch socket iterators: a walk of the kernel's TCP or UDP table that writes one
 * portwatch_socket_record per socket (socket_iter_abi.h) and a trailer at the end.
 *
 * Why not sock_diag: these records carry what sock_diag never reports, the sockets' SO_REUSEADDR
 * and SO_REUSEPORT (sk_reuse, sk_reuseport), on every socket, TIME_WAIT included (a TIME_WAIT
 * socket keeps the flag of the listener that accepted it). That is what decides whether a
 * restart that sets SO_REUSEADDR can bind. And one walk covers both address families.
 *
 * The kernel fixes the network namespace when the iterator is created (bpf_iter_create): the
 * creating thread's. TCP walks every listener first, then the established hash (TIME_WAIT and
 * request sockets included); bound but inactive TCP sockets are in neither and are not seen.
 * Fields are reported as sock_diag reports them (inet_diag.c), so that both backends count
 * alike: a TIME_WAIT socket's state is its substate, a request socket's SYN_RECV, v6only only
 * for full IPv6 sockets. CO-RE: offsets come from the running kernel's BTF. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "collectors/bpf/socket_iter_abi.h"

#define AF_INET 2
#define AF_INET6 10
#define TCP_SYN_RECV 3
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_LISTEN 10
#define TCP_NEW_SYN_RECV 12
#define TIMER_TIME_WAIT 3

char LICENSE[] SEC("license") = "GPL";

extern int CONFIG_HZ __kconfig __weak;

_Static_assert(sizeof(struct portwatch_socket_record) == PORTWATCH_SOCKET_ITER_RECORD_SIZE,
               "record size");
_Static_assert(sizeof(struct portwatch_socket_trailer) == PORTWATCH_SOCKET_ITER_RECORD_SIZE,
               "trailer size");

/* Local ports whose sockets' inodes are wanted (a bitmap, one bit per port), set by user space
 * through the skeleton's mmapped .bss: the configured services' ports. Listeners and unbound
 * UDP sockets always carry theirs. Reading a socket's inode costs a cache miss on its struct
 * socket (about a third of the walk's CPU time at 100k sockets, measured), and counting sockets
 * needs none: only finding the processes of listeners and service sockets does. */
__u64 inode_ports[1024];

static bool wants_inode(const struct portwatch_socket_record* record, bool udp) {
  if (record->state == TCP_LISTEN || (udp && record->state == TCP_CLOSE)) {
    return true;
  }
  const __u16 port = record->local_port;
  return (inode_ports[(port >> 6) & 1023] >> (port & 63)) & 1;
}

/* The inode of a full socket's struct socket, as sock_i_ino() gives it (the inode allocated with
 * it in struct socket_alloc); 0 without one (an orphan). */
static __u32 socket_inode(const struct sock* sk) {
  const struct socket* socket = sk->sk_socket;
  if (!socket) {
    return 0;
  }
  const struct inode* inode = &container_of(socket, struct socket_alloc, socket)->vfs_inode;
  unsigned long ino = 0;
  bpf_probe_read_kernel(&ino, sizeof(ino), &inode->i_ino);
  return (__u32)ino;
}

static void read_common(const struct sock_common* skc, struct portwatch_socket_record* record) {
  record->kind = PORTWATCH_SOCKET_ITER_RECORD;
  record->family = skc->skc_family;
  record->state = skc->skc_state;
  record->v6only = -1;
  record->reuse = BPF_CORE_READ_BITFIELD(skc, skc_reuse) != 0;
  record->reuseport = BPF_CORE_READ_BITFIELD(skc, skc_reuseport);
  record->local_port = skc->skc_num;
  record->remote_port = bpf_ntohs(skc->skc_dport);
  if (record->family == AF_INET6) {
    __builtin_memcpy(record->local_address, &skc->skc_v6_rcv_saddr, 16);
    __builtin_memcpy(record->remote_address, &skc->skc_v6_daddr, 16);
  } else {
    __builtin_memcpy(record->local_address, &skc->skc_rcv_saddr, 4);
    __builtin_memcpy(record->remote_address, &skc->skc_daddr, 4);
  }
}

/* A full socket: its inode when wanted, and IPV6_V6ONLY when it is an IPv6 one. */
static void read_full(const struct sock* sk, struct portwatch_socket_record* record, bool udp) {
  if (wants_inode(record, udp)) {
    record->inode = socket_inode(sk);
  }
  if (record->family == AF_INET6) {
    record->v6only = BPF_CORE_READ_BITFIELD(&sk->__sk_common, skc_ipv6only);
  }
}

static __u32 milliseconds_until(unsigned long expires) {
  const __u64 now = bpf_jiffies64();
  const int hz = CONFIG_HZ > 0 ? CONFIG_HZ : 250;
  if (expires <= now) {
    return 0;
  }
  return (__u32)((expires - now) * 1000 / hz);
}

static void write_trailer(struct bpf_iter_meta* meta) {
  struct portwatch_socket_trailer trailer = {};
  trailer.kind = PORTWATCH_SOCKET_ITER_TRAILER;
  trailer.objects = meta->seq_num;
  bpf_seq_write(meta->seq, &trailer, sizeof(trailer));
}

SEC("iter/tcp")
int portwatch_tcp_sockets(struct bpf_iter__tcp* ctx) {
  struct sock_common* skc = ctx->sk_common;
  if (!skc) {
    write_trailer(ctx->meta);
    return 0;
  }
  struct portwatch_socket_record record = {};
  read_common(skc, &record);
  record.uid = ctx->uid;
  if (record.state == TCP_TIME_WAIT) {
    struct tcp_timewait_sock* time_wait = bpf_skc_to_tcp_timewait_sock(skc);
    if (time_wait) {
      record.state = time_wait->tw_sk.tw_substate;
      record.timer = TIMER_TIME_WAIT;
      record.timer_expires_ms = milliseconds_until(time_wait->tw_sk.tw_timer.expires);
    }
  } else if (record.state == TCP_NEW_SYN_RECV) {
    record.state = TCP_SYN_RECV;
    struct tcp_request_sock* request = bpf_skc_to_tcp_request_sock(skc);
    if (request) {
      struct sock* listener = request->req.req.__req_common.skc_listener;
      if (listener) {
        record.reuse = BPF_CORE_READ_BITFIELD_PROBED(listener, __sk_common.skc_reuse) != 0;
        record.reuseport = BPF_CORE_READ_BITFIELD_PROBED(listener, __sk_common.skc_reuseport);
      }
    }
  } else {
    struct tcp_sock* tcp = bpf_skc_to_tcp_sock(skc);
    if (tcp) {
      read_full(&tcp->inet_conn.icsk_inet.sk, &record, false);
    }
  }
  bpf_seq_write(ctx->meta->seq, &record, sizeof(record));
  return 0;
}

SEC("iter/udp")
int portwatch_udp_sockets(struct bpf_iter__udp* ctx) {
  struct udp_sock* udp = ctx->udp_sk;
  if (!udp) {
    write_trailer(ctx->meta);
    return 0;
  }
  struct sock* sk = &udp->inet.sk;
  struct portwatch_socket_record record = {};
  read_common(&sk->__sk_common, &record);
  record.uid = ctx->uid;
  read_full(sk, &record, true);
  bpf_seq_write(ctx->meta->seq, &record, sizeof(record));
  return 0;
}
