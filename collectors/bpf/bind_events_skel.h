/* A thin C wrapper around the generated skeleton (bind_events.skel.h, in the build tree), so
 * that the generated code is compiled in its own C translation unit and never linted. */
#ifndef PORTWATCH_COLLECTORS_BPF_BIND_EVENTS_SKEL_H_
#define PORTWATCH_COLLECTORS_BPF_BIND_EVENTS_SKEL_H_

#include <linux/types.h>

#ifdef __cplusplus
extern "C" {
#endif

// C names, shared with C code: not the C++ naming rules.
// NOLINTBEGIN(readability-identifier-naming)
struct portwatch_bpf;

/* Opens, loads and attaches the program. On failure returns NULL, sets *error to a positive
 * errno and *stage to what failed ("open", "load", "attach"). */
struct portwatch_bpf* portwatch_bpf_start(long nr_bind, long nr_listen, long nr_connect, int* error,
                                          const char** stage);
/* Detaches the program and frees everything. */
void portwatch_bpf_destroy(struct portwatch_bpf* bpf);
int portwatch_bpf_failures_fd(const struct portwatch_bpf* bpf);
__u32 portwatch_bpf_failures_max_entries(const struct portwatch_bpf* bpf);
int portwatch_bpf_events_fd(const struct portwatch_bpf* bpf);
void portwatch_bpf_set_netns_filter(struct portwatch_bpf* bpf, __u32 netns);
__u64 portwatch_bpf_dropped_keys(const struct portwatch_bpf* bpf);
__u64 portwatch_bpf_lost_events(const struct portwatch_bpf* bpf);

#ifdef __cplusplus
}
#endif

// NOLINTEND(readability-identifier-naming)

#endif /* PORTWATCH_COLLECTORS_BPF_BIND_EVENTS_SKEL_H_ */
