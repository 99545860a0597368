// SPDX-License-Identifier: GPL-2.0
/* portwatch socket owner iterator: a walk of every fd of every process (iter/task_file) that
 * writes one portwatch_owner_record per fd holding a socket user space asked about (the `wanted`
 * map) and a trailer at the end (owner_iter_abi.h).
 *
 * Why not /proc/<pid>/fd: finding a socket's holders there means a readlink of every fd of every
 * process (~8 us per fd, seconds at a million fds), and each link read instantiates a proc inode
 * and a dentry (~890 B of slab per fd, charged to the exporter's memory cgroup and kept while
 * the holder lives). This walk reads the fd tables directly: no dentries, no strings, and only
 * the wanted sockets leave the kernel.
 *
 * The kernel's task_file iterator visits the tasks of the pid namespace of the thread that
 * created the walk (bpf_iter_create), and skips a thread that shares its group leader's fd table
 * (task_seq_get_next(), kernel/bpf/task_iter.c): each process's fds are seen once. A thread with
 * a table of its own (unshare(CLONE_FILES)) is reported under its process, as /proc would not;
 * user space keeps one record per (inode, process). */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "collectors/bpf/owner_iter_abi.h"

#define S_IFMT 00170000
#define S_IFSOCK 0140000

char LICENSE[] SEC("license") = "GPL";

/* Socket inode -> 1, filled by user space before each walk. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, PORTWATCH_OWNER_ITER_MAX_WANTED);
  __type(key, __u32);
  __type(value, __u8);
} wanted SEC(".maps");

_Static_assert(sizeof(struct portwatch_owner_record) == PORTWATCH_OWNER_ITER_RECORD_SIZE,
               "record size");
_Static_assert(sizeof(struct portwatch_owner_trailer) == PORTWATCH_OWNER_ITER_RECORD_SIZE,
               "trailer size");

/* The process's number in the pid namespace of the reader (the thread that read()s the walk,
 * which created it, so the namespace the walk covers and the one its /proc shows):
 * pid->numbers[level].nr of the process's group leader, as task_tgid_nr_ns() gives it. In the
 * initial namespace that is task->tgid. 0 when it cannot be read. */
static __u32 tgid_in_reader_namespace(struct task_struct* task) {
  struct task_struct* reader = bpf_get_current_task_btf();
  const unsigned int level = BPF_CORE_READ(reader, thread_pid, level);
  if (level == 0) {
    return (__u32)task->tgid;
  }
  struct pid* pid = BPF_CORE_READ(task, group_leader, thread_pid);
  if (!pid || BPF_CORE_READ(pid, level) < level) {
    return 0;
  }
  const char* numbers = (const char*)pid + bpf_core_field_offset(struct pid, numbers);
  int nr = 0;
  bpf_probe_read_kernel(&nr, sizeof(nr),
                        numbers + (__u64)level * bpf_core_type_size(struct upid) +
                            bpf_core_field_offset(struct upid, nr));
  return (__u32)nr;
}

SEC("iter/task_file")
int portwatch_socket_owners(struct bpf_iter__task_file* ctx) {
  struct seq_file* seq = ctx->meta->seq;
  struct task_struct* task = ctx->task;
  struct file* file = ctx->file;
  if (!task) {
    /* The call after the last fd (task_file_seq_stop() with nothing left). */
    struct portwatch_owner_trailer trailer = {};
    trailer.kind = PORTWATCH_OWNER_ITER_TRAILER;
    trailer.objects = ctx->meta->seq_num;
    bpf_seq_write(seq, &trailer, sizeof(trailer));
    return 0;
  }
  if (!file) {
    return 0;
  }
  const struct inode* inode = file->f_inode;
  if (!inode || (inode->i_mode & S_IFMT) != S_IFSOCK) {
    return 0;
  }
  /* A socket file's inode is its struct socket's (sock_alloc_file()): the number /proc shows
   * as socket:[N] and sock_diag reports. */
  const __u32 ino = (__u32)inode->i_ino;
  if (!bpf_map_lookup_elem(&wanted, &ino)) {
    return 0;
  }
  struct portwatch_owner_record record = {};
  record.kind = PORTWATCH_OWNER_ITER_RECORD;
  record.inode = ino;
  record.tgid = tgid_in_reader_namespace(task);
  record.fd = ctx->fd;
  bpf_seq_write(seq, &record, sizeof(record));
  return 0;
}
