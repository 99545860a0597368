/* Layout shared by the socket iterator BPF programs (socket_iter.bpf.c) and the exporter's
 * reader (collectors/socket_source/iterator_records.cc). A walk writes one record per socket
 * and, when it has visited every socket, one trailer of the same size: a reader that got the
 * trailer knows the walk reached its end. Fixed-size fields, no implicit padding. */
#ifndef PORTWATCH_COLLECTORS_BPF_SOCKET_ITER_ABI_H_
#define PORTWATCH_COLLECTORS_BPF_SOCKET_ITER_ABI_H_

#ifndef __bpf__
#include <linux/types.h>
#endif

// C names, shared with C code: not the C++ naming rules.
// NOLINTBEGIN(readability-identifier-naming)
enum portwatch_socket_iter_kind {
  PORTWATCH_SOCKET_ITER_RECORD = 0x51,
  PORTWATCH_SOCKET_ITER_TRAILER = 0x7e,
};

/* One socket, with the fields sock_diag reports, as sock_diag reports them (a TIME_WAIT
 * socket's state is its substate, a request socket's SYN_RECV), plus the flags it does not. */
struct portwatch_socket_record {
  __u8 kind; /* PORTWATCH_SOCKET_ITER_RECORD */
  __u8 family;
  __u8 state;
  __u8 timer;     /* 3 for TIME_WAIT, else 0 (sock_diag's idiag_timer) */
  __s8 v6only;    /* full IPv6 sockets: IPV6_V6ONLY; -1 otherwise, as sock_diag */
  __s8 reuse;     /* sk_reuse != 0; a request socket: its listener's */
  __s8 reuseport; /* sk_reuseport */
  __u8 pad;
  __u16 local_port; /* host order */
  __u16 remote_port;
  __u32 inode; /* listeners, unbound UDP sockets and sockets on the inode ports only (see
                  inode_ports in socket_iter.bpf.c); 0 without a struct socket (TIME_WAIT,
                  request, orphan) */
  __u32 uid;
  __u32 timer_expires_ms; /* TIME_WAIT: until it expires */
  __u8 local_address[16]; /* network order; IPv4 in the first 4 bytes */
  __u8 remote_address[16];
};

/* After the last socket. */
struct portwatch_socket_trailer {
  __u8 kind; /* PORTWATCH_SOCKET_ITER_TRAILER */
  __u8 pad[7];
  __u64 objects; /* meta->seq_num at the end: the last socket's index (0 also for none);
                    for debugging, not a count */
  __u8 reserved[40];
};

#define PORTWATCH_SOCKET_ITER_RECORD_SIZE 56

// NOLINTEND(readability-identifier-naming)

#endif /* PORTWATCH_COLLECTORS_BPF_SOCKET_ITER_ABI_H_ */
