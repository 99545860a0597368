/* A thin C wrapper around the generated socket iterator skeleton (socket_iter.skel.h, in the
 * build tree), so that the generated code is compiled in its own C translation unit and never
 * linted. */
#ifndef PORTWATCH_COLLECTORS_BPF_SOCKET_ITER_SKEL_H_
#define PORTWATCH_COLLECTORS_BPF_SOCKET_ITER_SKEL_H_

#include <linux/types.h>

#ifdef __cplusplus
extern "C" {
#endif

// C names, shared with C code: not the C++ naming rules.
// NOLINTBEGIN(readability-identifier-naming)
struct portwatch_socket_iter;

enum portwatch_socket_iter_protocol {
  PORTWATCH_SOCKET_ITER_TCP = 0,
  PORTWATCH_SOCKET_ITER_UDP = 1,
};

/* Opens, loads and attaches (as iterator links) the TCP and UDP programs. Returns NULL and sets
 * `*error` (a positive errno) and `*stage` ("open", "load", "attach tcp", "attach udp",
 * "allocate") when the kernel or the process's privileges do not allow it. */
struct portwatch_socket_iter* portwatch_socket_iter_open(int* error, const char** stage);
/* A new walk of `protocol`'s table in the calling thread's network namespace: an fd to read()
 * records from until EOF, or a negative errno. */
int portwatch_socket_iter_create(const struct portwatch_socket_iter* iter,
                                 enum portwatch_socket_iter_protocol protocol);
/* The local ports whose sockets' inodes the walks report (besides listeners' and unbound UDP
 * sockets'): a bitmap of 65536 bits, bit p of word p / 64. Walks started after this see it. */
void portwatch_socket_iter_set_inode_ports(struct portwatch_socket_iter* iter,
                                           const __u64 ports[1024]);
/* Detaches the programs and frees everything (walks already created keep working). */
void portwatch_socket_iter_destroy(struct portwatch_socket_iter* iter);
/* Whether the running kernel iterates `protocol`'s sockets exactly once under churn (the 2025
 * batching fixes, Linux 6.16 for UDP and 6.17 for TCP, whose batch-item unions its BTF names): 1
 * yes, 0 no, a negative errno when the kernel's BTF cannot be read. */
int portwatch_socket_iter_exact(enum portwatch_socket_iter_protocol protocol);

// NOLINTEND(readability-identifier-naming)

#ifdef __cplusplus
}
#endif

#endif /* PORTWATCH_COLLECTORS_BPF_SOCKET_ITER_SKEL_H_ */
