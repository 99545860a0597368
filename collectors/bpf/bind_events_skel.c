/* C wrapper around the generated skeleton: see bind_events_skel.h. */
#include "collectors/bpf/bind_events_skel.h"

#include <errno.h>
#include <stdlib.h>

#include "bind_events.skel.h" /* generated into the build tree by bpftool gen skeleton */

struct portwatch_bpf {
  struct bind_events_bpf* skeleton;
};

struct portwatch_bpf* portwatch_bpf_start(long nr_bind, long nr_listen, long nr_connect, int* error,
                                          const char** stage) {
  struct bind_events_bpf* skeleton = bind_events_bpf__open();
  if (skeleton == NULL) {
    *error = errno != 0 ? errno : EINVAL;
    *stage = "open";
    return NULL;
  }
  skeleton->rodata->nr_bind = nr_bind;
  skeleton->rodata->nr_listen = nr_listen;
  skeleton->rodata->nr_connect = nr_connect;
  int result = bind_events_bpf__load(skeleton);
  *stage = "load";
  if (result == 0) {
    result = bind_events_bpf__attach(skeleton);
    *stage = "attach";
  }
  if (result != 0) {
    *error = -result;
    bind_events_bpf__destroy(skeleton);
    return NULL;
  }
  struct portwatch_bpf* bpf = calloc(1, sizeof(*bpf));
  if (bpf == NULL) {
    *error = ENOMEM;
    *stage = "allocate";
    bind_events_bpf__destroy(skeleton);
    return NULL;
  }
  bpf->skeleton = skeleton;
  *stage = "";
  return bpf;
}

void portwatch_bpf_destroy(struct portwatch_bpf* bpf) {
  if (bpf != NULL) {
    bind_events_bpf__destroy(bpf->skeleton);
    free(bpf);
  }
}

int portwatch_bpf_failures_fd(const struct portwatch_bpf* bpf) {
  return bpf_map__fd(bpf->skeleton->maps.failures);
}

__u32 portwatch_bpf_failures_max_entries(const struct portwatch_bpf* bpf) {
  return bpf_map__max_entries(bpf->skeleton->maps.failures);
}

int portwatch_bpf_events_fd(const struct portwatch_bpf* bpf) {
  return bpf_map__fd(bpf->skeleton->maps.events);
}

void portwatch_bpf_set_netns_filter(struct portwatch_bpf* bpf, __u32 netns) {
  __atomic_store_n(&bpf->skeleton->bss->filter_netns, netns, __ATOMIC_RELAXED);
}

__u64 portwatch_bpf_dropped_keys(const struct portwatch_bpf* bpf) {
  return __atomic_load_n(&bpf->skeleton->bss->dropped_keys, __ATOMIC_RELAXED);
}

__u64 portwatch_bpf_lost_events(const struct portwatch_bpf* bpf) {
  return __atomic_load_n(&bpf->skeleton->bss->lost_events, __ATOMIC_RELAXED);
}
