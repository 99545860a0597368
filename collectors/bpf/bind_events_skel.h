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

/* Which programs are loaded: the fexit programs on __sys_bind/__sys_listen/__sys_connect, the
 * programs on the trace events syscalls:sys_exit_bind/listen/connect, or the raw tracepoint
 * program on raw_syscalls:sys_exit. */
enum portwatch_bpf_attach {
  PORTWATCH_BPF_ATTACH_NONE = 0, /* nothing attached */
  PORTWATCH_BPF_ATTACH_FEXIT = 1,
  PORTWATCH_BPF_ATTACH_TRACEPOINT = 2,
  PORTWATCH_BPF_ATTACH_RAW_TRACEPOINT = 3,
};
#define PORTWATCH_BPF_ATTACH_COUNT 4

struct portwatch_bpf_start_result {
  enum portwatch_bpf_attach used; /* on success: the path in use */
  /* Per path (indexed by enum portwatch_bpf_attach) that was tried and failed: a positive
   * errno and what failed ("open", "load", "attach"); 0 and "" otherwise. */
  int error[PORTWATCH_BPF_ATTACH_COUNT];
  const char* stage[PORTWATCH_BPF_ATTACH_COUNT];
};

/* The bit of one path in an `allowed` mask. */
#define PORTWATCH_BPF_ATTACH_BIT(path) (1U << (unsigned)(path))

/* Opens, loads and attaches the programs of the first path in `allowed` (a mask of
 * PORTWATCH_BPF_ATTACH_BIT) that the kernel accepts, in the order fexit, trace events, raw
 * tracepoint. Returns NULL when nothing could be attached; `result` says which path is in use
 * and why the ones tried before failed. */
struct portwatch_bpf* portwatch_bpf_start(long nr_bind, long nr_listen, long nr_connect,
                                          unsigned allowed,
                                          struct portwatch_bpf_start_result* result);
/* Loads the trace-event programs and unloads them without attaching anything: 0 when this
 * process may load BPF tracing programs at all, else a negative errno. Tells "the kernel refuses
 * fexit" from "no permission to use BPF". */
int portwatch_bpf_probe_load(long nr_bind, long nr_listen, long nr_connect);
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
