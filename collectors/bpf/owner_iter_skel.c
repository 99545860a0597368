/* C wrapper around the generated skeleton: see owner_iter_skel.h. */
#include "collectors/bpf/owner_iter_skel.h"

#include <errno.h>
#include <stdlib.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "owner_iter.skel.h" /* generated into the build tree by bpftool gen skeleton */

struct portwatch_owner_iter {
  struct owner_iter_bpf* skeleton;
  struct bpf_link* link;
  int wanted_fd;
};

static int negative_errno(int result) {
  if (result < 0) {
    return result;
  }
  return errno != 0 ? -errno : -EINVAL;
}

void portwatch_owner_iter_destroy(struct portwatch_owner_iter* iter) {
  if (iter == NULL) {
    return;
  }
  bpf_link__destroy(iter->link);
  owner_iter_bpf__destroy(iter->skeleton);
  free(iter);
}

struct portwatch_owner_iter* portwatch_owner_iter_open(int* error, const char** stage) {
  struct portwatch_owner_iter* iter = calloc(1, sizeof(*iter));
  if (iter == NULL) {
    *error = ENOMEM;
    *stage = "allocate";
    return NULL;
  }
  errno = 0;
  *stage = "open";
  iter->skeleton = owner_iter_bpf__open();
  int result = iter->skeleton == NULL ? negative_errno(0) : 0;
  if (result == 0) {
    *stage = "load";
    result = owner_iter_bpf__load(iter->skeleton);
  }
  if (result == 0) {
    *stage = "attach";
    errno = 0;
    iter->link = bpf_program__attach_iter(iter->skeleton->progs.portwatch_socket_owners, NULL);
    result = iter->link == NULL ? negative_errno(0) : 0;
  }
  if (result != 0) {
    *error = -negative_errno(result);
    portwatch_owner_iter_destroy(iter);
    return NULL;
  }
  iter->wanted_fd = bpf_map__fd(iter->skeleton->maps.wanted);
  *error = 0;
  *stage = "";
  return iter;
}

/* One batch call for many keys (5.6+), or one call per key where the kernel has no batch
 * operations for the map. */
static int update_wanted(int map_fd, const __u32* keys, __u32 count) {
  if (count == 0) {
    return 0;
  }
  __u8* values = calloc(count, 1);
  if (values == NULL) {
    return -ENOMEM;
  }
  for (__u32 i = 0; i < count; ++i) {
    values[i] = 1;
  }
  __u32 done = count;
  int result = bpf_map_update_batch(map_fd, keys, values, &done, NULL);
  if (result == -EINVAL || result == -ENOTSUP || result == -EOPNOTSUPP) {
    result = 0;
    for (__u32 i = 0; i < count && result == 0; ++i) {
      result = bpf_map_update_elem(map_fd, &keys[i], &values[i], BPF_ANY);
    }
  }
  free(values);
  return result < 0 ? negative_errno(result) : 0;
}

static int delete_wanted(int map_fd, const __u32* keys, __u32 count) {
  if (count == 0) {
    return 0;
  }
  __u32 done = count;
  int result = bpf_map_delete_batch(map_fd, keys, &done, NULL);
  if (result == -EINVAL || result == -ENOTSUP || result == -EOPNOTSUPP) {
    result = 0;
    for (__u32 i = 0; i < count && result == 0; ++i) {
      result = bpf_map_delete_elem(map_fd, &keys[i]);
    }
  }
  return result < 0 ? negative_errno(result) : 0;
}

int portwatch_owner_iter_update(struct portwatch_owner_iter* iter, const __u32* add,
                                __u32 add_count, const __u32* remove, __u32 remove_count) {
  /* Removals first: the map may be near its capacity. */
  const int result = delete_wanted(iter->wanted_fd, remove, remove_count);
  return result != 0 ? result : update_wanted(iter->wanted_fd, add, add_count);
}

int portwatch_owner_iter_clear(struct portwatch_owner_iter* iter) {
  __u32 key = 0;
  for (;;) {
    /* Always from the first key: what follows a deleted key is not defined. */
    int result = bpf_map_get_next_key(iter->wanted_fd, NULL, &key);
    if (result == -ENOENT) {
      return 0; /* empty */
    }
    if (result < 0) {
      return negative_errno(result);
    }
    result = bpf_map_delete_elem(iter->wanted_fd, &key);
    if (result < 0 && result != -ENOENT) {
      return negative_errno(result);
    }
  }
}

int portwatch_owner_iter_create(const struct portwatch_owner_iter* iter) {
  const int fd = bpf_iter_create(bpf_link__fd(iter->link));
  return fd >= 0 ? fd : negative_errno(fd);
}
