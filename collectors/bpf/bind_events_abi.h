/* Layout shared by the bind_events BPF program (C, compiled with clang -target bpf) and the
 * exporter (C++). Every field has a fixed size and the structs have no implicit padding. */
#ifndef PORTWATCH_COLLECTORS_BPF_BIND_EVENTS_ABI_H_
#define PORTWATCH_COLLECTORS_BPF_BIND_EVENTS_ABI_H_

#ifndef __bpf__
#include <linux/types.h>
#endif

// C names, shared with C code: not the C++ naming rules.
// NOLINTBEGIN(readability-identifier-naming)
/* Which system call failed. */
enum portwatch_bind_syscall {
  PORTWATCH_SYSCALL_BIND = 1,
  PORTWATCH_SYSCALL_LISTEN = 2,
  PORTWATCH_SYSCALL_CONNECT = 3,
};

#define PORTWATCH_COMM_LEN 16

/* One counter of the "failures" hash map: a failed call by (netns, syscall, errno, family, port,
 * comm). The port is in host order: from the sockaddr the caller passed (bind, connect: the
 * destination port), or the socket's bound port for listen(). family is AF_INET, AF_INET6 or 0
 * when the sockaddr could not be read. */
struct portwatch_bind_key {
  __u32 netns; /* inode of the caller's network namespace */
  __u16 port;
  __u8 syscall; /* enum portwatch_bind_syscall */
  __u8 err;     /* positive errno: EADDRINUSE, EADDRNOTAVAIL, EACCES */
  __u16 family;
  __u16 pad;
  char comm[PORTWATCH_COMM_LEN];
};

/* One failure as sent to user space through the ring buffer for the log line. */
struct portwatch_bind_event {
  struct portwatch_bind_key key;
  __u32 pid; /* thread group id */
  __u32 uid;
  __u8 addr[16]; /* network order; IPv4 in the first 4 bytes */
};

// NOLINTEND(readability-identifier-naming)

#endif /* PORTWATCH_COLLECTORS_BPF_BIND_EVENTS_ABI_H_ */
