/* A thin C wrapper around the generated socket owner iterator skeleton (owner_iter.skel.h, in
 * the build tree), so that the generated code is compiled in its own C translation unit and never
 * linted. */
#ifndef PORTWATCH_COLLECTORS_BPF_OWNER_ITER_SKEL_H_
#define PORTWATCH_COLLECTORS_BPF_OWNER_ITER_SKEL_H_

#include <linux/types.h>

#ifdef __cplusplus
extern "C" {
#endif

// C names, shared with C code: not the C++ naming rules.
// NOLINTBEGIN(readability-identifier-naming)
struct portwatch_owner_iter;

/* Opens, loads and attaches (as an iterator link) the task_file program. Returns NULL and sets
 * `*error` (a positive errno) and `*stage` ("open", "load", "attach", "allocate") when the kernel
 * or the process's privileges do not allow it. */
struct portwatch_owner_iter* portwatch_owner_iter_open(int* error, const char** stage);
/* Adds `add` to the wanted inodes and removes `remove` (each present) from them. 0, or a negative
 * errno (-E2BIG: more than PORTWATCH_OWNER_ITER_MAX_WANTED); after a failure the map's content is
 * unknown: clear it. */
int portwatch_owner_iter_update(struct portwatch_owner_iter* iter, const __u32* add,
                                __u32 add_count, const __u32* remove, __u32 remove_count);
/* Empties the wanted map. 0 or a negative errno. */
int portwatch_owner_iter_clear(struct portwatch_owner_iter* iter);
/* A new walk of every process's fds (the calling thread's pid namespace): an fd to read() records
 * from until EOF, or a negative errno. */
int portwatch_owner_iter_create(const struct portwatch_owner_iter* iter);
/* Detaches the program and frees everything (walks already created keep working). */
void portwatch_owner_iter_destroy(struct portwatch_owner_iter* iter);

// NOLINTEND(readability-identifier-naming)

#ifdef __cplusplus
}
#endif

#endif /* PORTWATCH_COLLECTORS_BPF_OWNER_ITER_SKEL_H_ */
