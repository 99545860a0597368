/* Layout shared by the socket owner iterator (owner_iter.bpf.c) and the exporter's reader
 * (collectors/procfs/socket_fd_iterator.cc). A walk writes one record per fd that holds a wanted
 * socket and, when it has visited every fd of every process, one trailer of the same size: a
 * reader that got the trailer knows the walk reached its end. Fixed-size fields, no implicit
 * padding. */
#ifndef PORTWATCH_COLLECTORS_BPF_OWNER_ITER_ABI_H_
#define PORTWATCH_COLLECTORS_BPF_OWNER_ITER_ABI_H_

#ifndef __bpf__
#include <linux/types.h>
#endif

// C names, shared with C code: not the C++ naming rules.
// NOLINTBEGIN(readability-identifier-naming)
enum portwatch_owner_iter_kind {
  PORTWATCH_OWNER_ITER_RECORD = 0x53,
  PORTWATCH_OWNER_ITER_TRAILER = 0x7d,
};

/* One fd of one process that holds a wanted socket. */
struct portwatch_owner_record {
  __u8 kind; /* PORTWATCH_OWNER_ITER_RECORD */
  __u8 pad[3];
  __u32 inode; /* the socket's inode, as /proc/<pid>/fd shows it: socket:[inode] */
  __u32 tgid;  /* the process, numbered in the reader's pid namespace (as its /proc shows it) */
  __u32 fd;
};

/* After the last fd. */
struct portwatch_owner_trailer {
  __u8 kind; /* PORTWATCH_OWNER_ITER_TRAILER */
  __u8 pad[7];
  __u64 objects; /* meta->seq_num at the end: fds visited before it; for debugging */
};

#define PORTWATCH_OWNER_ITER_RECORD_SIZE 16

/* Capacity of the `wanted` map (socket inodes whose holders are looked for). A scrape wants every
 * listener of the node and of each pod read (up to 65536 each, ServiceTable's cap) plus up to 256
 * sockets per service and state: 262144 leaves room for four namespaces at that cap. The map is
 * allocated per element (BPF_F_NO_PREALLOC), so the size is only a ceiling: kernel memory grows
 * with the inodes actually wanted (under 100 B each), not with this number. More wanted inodes than
 * this: the insert fails (E2BIG) and that pass reads /proc instead. */
#define PORTWATCH_OWNER_ITER_MAX_WANTED 262144

// NOLINTEND(readability-identifier-naming)

#endif /* PORTWATCH_COLLECTORS_BPF_OWNER_ITER_ABI_H_ */
