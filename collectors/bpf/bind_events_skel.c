/* C wrapper around the generated skeleton: see bind_events_skel.h. */
#include "collectors/bpf/bind_events_skel.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "bind_events.skel.h" /* generated into the build tree by bpftool gen skeleton */

struct portwatch_bpf {
  struct bind_events_bpf* skeleton;
};

/* Opens and loads the programs of one path, and attaches them unless `attach` is false; returns
 * 0 or a negative errno. */
static int start_path(long nr_bind, long nr_listen, long nr_connect, enum portwatch_bpf_attach path,
                      bool attach, struct bind_events_bpf** out, const char** stage) {
  errno = 0;
  struct bind_events_bpf* skeleton = bind_events_bpf__open();
  if (skeleton == NULL) {
    *stage = "open";
    return errno != 0 ? -errno : -EINVAL;
  }
  skeleton->rodata->nr_bind = nr_bind;
  skeleton->rodata->nr_listen = nr_listen;
  skeleton->rodata->nr_connect = nr_connect;
  /* Only the chosen path is loaded (and so attached by bind_events_bpf__attach). */
  const bool fexit = path == PORTWATCH_BPF_ATTACH_FEXIT;
  const bool tracepoint = path == PORTWATCH_BPF_ATTACH_TRACEPOINT;
  bpf_program__set_autoload(skeleton->progs.portwatch_fexit_bind, fexit);
  bpf_program__set_autoload(skeleton->progs.portwatch_fexit_listen, fexit);
  bpf_program__set_autoload(skeleton->progs.portwatch_fexit_connect, fexit);
  bpf_program__set_autoload(skeleton->progs.portwatch_tp_bind, tracepoint);
  bpf_program__set_autoload(skeleton->progs.portwatch_tp_listen, tracepoint);
  bpf_program__set_autoload(skeleton->progs.portwatch_tp_connect, tracepoint);
  bpf_program__set_autoload(skeleton->progs.portwatch_sys_exit,
                            path == PORTWATCH_BPF_ATTACH_RAW_TRACEPOINT);
  *stage = "load";
  int result = bind_events_bpf__load(skeleton);
  if (result == 0 && attach) {
    *stage = "attach";
    result = bind_events_bpf__attach(skeleton);
  }
  if (result != 0) {
    bind_events_bpf__destroy(skeleton);
    return result < 0 ? result : -EINVAL;
  }
  if (!attach) {
    bind_events_bpf__destroy(skeleton);
    return 0;
  }
  *out = skeleton;
  *stage = "";
  return 0;
}

struct portwatch_bpf* portwatch_bpf_start(long nr_bind, long nr_listen, long nr_connect,
                                          unsigned allowed,
                                          struct portwatch_bpf_start_result* result) {
  static const enum portwatch_bpf_attach order[] = {PORTWATCH_BPF_ATTACH_FEXIT,
                                                    PORTWATCH_BPF_ATTACH_TRACEPOINT,
                                                    PORTWATCH_BPF_ATTACH_RAW_TRACEPOINT};
  struct bind_events_bpf* skeleton = NULL;
  result->used = PORTWATCH_BPF_ATTACH_NONE;
  for (int i = 0; i < PORTWATCH_BPF_ATTACH_COUNT; ++i) {
    result->error[i] = 0;
    result->stage[i] = "";
  }
  for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && skeleton == NULL; ++i) {
    const enum portwatch_bpf_attach path = order[i];
    if ((allowed & PORTWATCH_BPF_ATTACH_BIT(path)) == 0) {
      continue;
    }
    const int error =
        start_path(nr_bind, nr_listen, nr_connect, path, true, &skeleton, &result->stage[path]);
    if (error == 0) {
      result->used = path;
    } else {
      result->error[path] = -error;
    }
  }
  if (skeleton == NULL) {
    return NULL;
  }
  struct portwatch_bpf* bpf = calloc(1, sizeof(*bpf));
  if (bpf == NULL) {
    result->error[result->used] = ENOMEM;
    result->stage[result->used] = "allocate";
    result->used = PORTWATCH_BPF_ATTACH_NONE;
    bind_events_bpf__destroy(skeleton);
    return NULL;
  }
  bpf->skeleton = skeleton;
  return bpf;
}

int portwatch_bpf_probe_load(long nr_bind, long nr_listen, long nr_connect) {
  struct bind_events_bpf* unused = NULL;
  const char* stage = "";
  return start_path(nr_bind, nr_listen, nr_connect, PORTWATCH_BPF_ATTACH_TRACEPOINT, false, &unused,
                    &stage);
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
