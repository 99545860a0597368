/* C wrapper around the generated skeleton: see socket_iter_skel.h. */
#include "collectors/bpf/socket_iter_skel.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "socket_iter.skel.h" /* generated into the build tree by bpftool gen skeleton */

struct portwatch_socket_iter {
  struct socket_iter_bpf* skeleton;
  struct bpf_link* tcp;
  struct bpf_link* udp;
};

static int negative_errno(int result) {
  if (result < 0) {
    return result;
  }
  return errno != 0 ? -errno : -EINVAL;
}

void portwatch_socket_iter_destroy(struct portwatch_socket_iter* iter) {
  if (iter == NULL) {
    return;
  }
  bpf_link__destroy(iter->tcp);
  bpf_link__destroy(iter->udp);
  socket_iter_bpf__destroy(iter->skeleton);
  free(iter);
}

struct portwatch_socket_iter* portwatch_socket_iter_open(int* error, const char** stage) {
  struct portwatch_socket_iter* iter = calloc(1, sizeof(*iter));
  if (iter == NULL) {
    *error = ENOMEM;
    *stage = "allocate";
    return NULL;
  }
  errno = 0;
  *stage = "open";
  iter->skeleton = socket_iter_bpf__open();
  int result = iter->skeleton == NULL ? negative_errno(0) : 0;
  if (result == 0) {
    *stage = "load";
    result = socket_iter_bpf__load(iter->skeleton);
  }
  if (result == 0) {
    *stage = "attach tcp";
    errno = 0;
    iter->tcp = bpf_program__attach_iter(iter->skeleton->progs.portwatch_tcp_sockets, NULL);
    result = iter->tcp == NULL ? negative_errno(0) : 0;
  }
  if (result == 0) {
    *stage = "attach udp";
    errno = 0;
    iter->udp = bpf_program__attach_iter(iter->skeleton->progs.portwatch_udp_sockets, NULL);
    result = iter->udp == NULL ? negative_errno(0) : 0;
  }
  if (result != 0) {
    *error = -negative_errno(result);
    portwatch_socket_iter_destroy(iter);
    return NULL;
  }
  *error = 0;
  *stage = "";
  return iter;
}

int portwatch_socket_iter_create(const struct portwatch_socket_iter* iter,
                                 enum portwatch_socket_iter_protocol protocol) {
  const struct bpf_link* link = protocol == PORTWATCH_SOCKET_ITER_TCP ? iter->tcp : iter->udp;
  const int fd = bpf_iter_create(bpf_link__fd(link));
  return fd >= 0 ? fd : negative_errno(fd);
}

void portwatch_socket_iter_set_inode_ports(struct portwatch_socket_iter* iter,
                                           const __u64 ports[1024]) {
  for (int word = 0; word < 1024; ++word) {
    __atomic_store_n(&iter->skeleton->bss->inode_ports[word], ports[word], __ATOMIC_RELAXED);
  }
}

int portwatch_socket_iter_exact(enum portwatch_socket_iter_protocol protocol) {
  errno = 0;
  struct btf* kernel = btf__load_vmlinux_btf();
  if (kernel == NULL) {
    return negative_errno(0);
  }
  const char* name =
      protocol == PORTWATCH_SOCKET_ITER_TCP ? "bpf_tcp_iter_batch_item" : "bpf_udp_iter_batch_item";
  const int found = btf__find_by_name_kind(kernel, name, BTF_KIND_UNION) > 0;
  btf__free(kernel);
  return found;
}
