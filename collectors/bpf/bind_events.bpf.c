// SPDX-License-Identifier: GPL-2.0
/* portwatch bind_events: counts bind() failing with EADDRINUSE, EADDRNOTAVAIL or EACCES,
 * listen() failing with EADDRINUSE and connect() failing with EADDRNOTAVAIL.
 *
 * Three ways in, chosen by user space at load time (bpf_program__set_autoload): the first that
 * the kernel accepts, in this order, all counting through count_failure() below:
 *  - preferred, "fexit": three fexit programs on the kernel functions __sys_bind, __sys_listen
 *    and __sys_connect (what the system calls call). BPF trampolines: only those three calls
 *    run any BPF code, with their arguments and return value; no tracefs, no kprobes.
 *  - second choice, "tracepoint": three programs on the syscall trace events
 *    syscalls:sys_exit_bind/listen/connect (perf events; their ids come from tracefs). Only
 *    those three calls run BPF code; the arguments are read from the caller's saved registers
 *    (bpf_task_pt_regs), so no sys_enter program is needed.
 *  - last resort, "raw_tracepoint": one program on the raw tracepoint raw_syscalls:sys_exit,
 *    attached by name (BPF_RAW_TRACEPOINT_OPEN) on kernels without BPF trampolines or without
 *    those functions. It runs at every system call's exit of every process and returns after
 *    one comparison unless the call failed with one of the three errnos; only then does it look
 *    at the syscall number and the arguments (still in the caller's saved registers).
 * CO-RE: struct offsets come from the running kernel's BTF. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "collectors/bpf/bind_events_abi.h"

#define EACCES 13
#define EADDRINUSE 98
#define EADDRNOTAVAIL 99
#define AF_INET 2
#define AF_INET6 10

char LICENSE[] SEC("license") = "GPL";

/* Syscall numbers of the running architecture, filled in by user space before loading. */
const volatile long nr_bind = -1;
const volatile long nr_listen = -1;
const volatile long nr_connect = -1;

/* Written by user space at any time: count only this network namespace (0: every one). */
__u32 filter_netns = 0;
/* Failures not counted because the map was full, and failures not sent to user space for the
 * log line (rate limit below, or ring buffer full). */
__u64 dropped_keys = 0;
__u64 lost_events = 0;
/* At most one event per EVENT_INTERVAL_NS and network namespace goes to user space: the log is
 * rate-limited anyway, a ring buffer wake-up per failure would cost more than the counting
 * itself, and a noisy namespace must not silence the others. */
#define EVENT_INTERVAL_NS (20 * 1000 * 1000ULL)

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, struct portwatch_bind_key);
  __type(value, __u64);
} failures SEC(".maps");

/* The rate limit's memory: one slot per netns inode modulo EVENT_SLOTS. An array, not a hash:
 * the verifier inlines its lookup, which runs on every failure. Two namespaces sharing a slot
 * take it from each other and both pass more often: a best-effort limit (user space limits the
 * log lines again). Updates race between CPUs the same harmless way. */
#define EVENT_SLOTS 1024
struct event_slot {
  __u32 netns;
  __u32 pad;
  __u64 last; /* bpf_ktime_get_ns() of the namespace's last event */
};
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, EVENT_SLOTS);
  __type(key, __u32);
  __type(value, struct event_slot);
} last_event SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline long syscall_nr(struct pt_regs *regs) {
#if defined(__TARGET_ARCH_x86)
  return BPF_CORE_READ(regs, orig_ax);
#elif defined(__TARGET_ARCH_arm64)
  return BPF_CORE_READ(regs, syscallno);
#else
#error "bind_events: syscall number register unknown for this architecture"
#endif
}

/* Family, port and address of a user-space sockaddr: one read of user memory. */
static __always_inline void read_sockaddr(const void *uaddr, long len, struct portwatch_bind_event *event) {
  union {
    __u16 family;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } addr = {};
  if (!uaddr) {
    return;
  }
  if (len >= (long)sizeof(addr.in6)) {
    if (bpf_probe_read_user(&addr, sizeof(addr.in6), uaddr) != 0) {
      return;
    }
  } else if (len >= (long)sizeof(addr.in)) {
    if (bpf_probe_read_user(&addr, sizeof(addr.in), uaddr) != 0) {
      return;
    }
  } else {
    return;
  }
  if (addr.family == AF_INET) {
    event->key.family = AF_INET;
    event->key.port = bpf_ntohs(addr.in.sin_port);
    __builtin_memcpy(event->addr, &addr.in.sin_addr, 4);
  } else if (addr.family == AF_INET6 && len >= (long)sizeof(addr.in6)) {
    event->key.family = AF_INET6;
    event->key.port = bpf_ntohs(addr.in6.sin6_port);
    __builtin_memcpy(event->addr, &addr.in6.sin6_addr, 16);
  }
}

/* listen() has no sockaddr: the port is the one the socket is bound to (0 when autobind failed). */
static __always_inline void read_socket_port(struct task_struct *task, long fd,
                                             struct portwatch_bind_event *event) {
  struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
  unsigned int max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
  struct file *file = NULL;
  if (fd < 0 || fd >= max_fds || bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) != 0 ||
      !file) {
    return;
  }
  struct socket *sock = BPF_CORE_READ(file, private_data);
  if (!sock) {
    return;
  }
  struct sock *sk = BPF_CORE_READ(sock, sk);
  if (!sk) {
    return;
  }
  event->key.family = BPF_CORE_READ(sk, __sk_common.skc_family);
  event->key.port = BPF_CORE_READ(sk, __sk_common.skc_num);
}

/* Counts one failure of `syscall` (the caller already checked the errno is one counted for it)
 * and, rate-limited, sends it to user space. For bind/connect `uaddr`/`len` are the caller's
 * sockaddr; for listen only `fd` is used. */
static __always_inline int count_failure(__u8 syscall, long ret, long fd, const void *uaddr,
                                         long len) {
  /* A BTF pointer: plain (fault-safe) loads, no helper call per field. */
  struct task_struct *task = bpf_get_current_task_btf();
  __u32 netns = task->nsproxy->net_ns->ns.inum;
  if (filter_netns != 0 && netns != filter_netns) {
    return 0;
  }

  struct portwatch_bind_event event = {};
  event.key.netns = netns;
  event.key.syscall = syscall;
  event.key.err = (__u8)(-ret);
  bpf_get_current_comm(event.key.comm, sizeof(event.key.comm));
  if (syscall == PORTWATCH_SYSCALL_LISTEN) {
    read_socket_port(task, fd, &event);
  } else {
    read_sockaddr(uaddr, len, &event);
  }

  __u64 *count = bpf_map_lookup_elem(&failures, &event.key);
  if (count) {
    __sync_fetch_and_add(count, 1);
  } else {
    __u64 one = 1;
    if (bpf_map_update_elem(&failures, &event.key, &one, BPF_NOEXIST) != 0) {
      /* Another CPU may have inserted the key meanwhile; otherwise the map is full. */
      count = bpf_map_lookup_elem(&failures, &event.key);
      if (count) {
        __sync_fetch_and_add(count, 1);
      } else {
        __sync_fetch_and_add(&dropped_keys, 1);
      }
    }
  }

  __u32 slot_index = netns % EVENT_SLOTS;
  struct event_slot *slot = bpf_map_lookup_elem(&last_event, &slot_index);
  if (!slot) {
    return 0;
  }
  __u64 now = bpf_ktime_get_ns();
  if (slot->netns == netns && now - slot->last < EVENT_INTERVAL_NS) {
    __sync_fetch_and_add(&lost_events, 1);
    return 0;
  }
  slot->netns = netns;
  slot->last = now;
  /* Only the log line needs them: not fetched for the failures it skips. */
  event.pid = bpf_get_current_pid_tgid() >> 32;
  event.uid = (__u32)bpf_get_current_uid_gid();
  struct portwatch_bind_event *out = bpf_ringbuf_reserve(&events, sizeof(*out), 0);
  if (!out) {
    __sync_fetch_and_add(&lost_events, 1);
    return 0;
  }
  __builtin_memcpy(out, &event, sizeof(*out));
  bpf_ringbuf_submit(out, 0);
  return 0;
}

/* Preferred path: fexit on the functions behind the three system calls (and the 32-bit
 * socketcall()), not on io_uring's (__sys_bind_socket, __sys_connect_file). Signatures of
 * net/socket.c: int __sys_bind(int fd, struct sockaddr __user *umyaddr, int addrlen),
 * int __sys_listen(int fd, int backlog), int __sys_connect(int fd, struct sockaddr __user
 * *uservaddr, int addrlen). The sockaddr is user memory: read with bpf_probe_read_user. */
SEC("fexit/__sys_bind")
int BPF_PROG(portwatch_fexit_bind, int fd, struct sockaddr *umyaddr, int addrlen, int ret) {
  if (ret != -EADDRINUSE && ret != -EADDRNOTAVAIL && ret != -EACCES) {
    return 0;
  }
  return count_failure(PORTWATCH_SYSCALL_BIND, ret, fd, umyaddr, addrlen);
}

SEC("fexit/__sys_listen")
int BPF_PROG(portwatch_fexit_listen, int fd, int backlog, int ret) {
  if (ret != -EADDRINUSE) {
    return 0;
  }
  return count_failure(PORTWATCH_SYSCALL_LISTEN, ret, fd, NULL, 0);
}

SEC("fexit/__sys_connect")
int BPF_PROG(portwatch_fexit_connect, int fd, struct sockaddr *uservaddr, int addrlen, int ret) {
  if (ret != -EADDRNOTAVAIL) {
    return 0;
  }
  return count_failure(PORTWATCH_SYSCALL_CONNECT, ret, fd, uservaddr, addrlen);
}

/* Second choice: the syscall trace events. Their context (tracefs .../sys_exit_bind/format):
 * the common header (8 bytes), int __syscall_nr at 8, long ret at 16. */
struct portwatch_syscall_exit {
  __u64 common;
  int syscall_nr;
  int pad;
  long ret;
};

static __always_inline struct pt_regs *current_syscall_regs(void) {
  return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

SEC("tracepoint/syscalls/sys_exit_bind")
int portwatch_tp_bind(struct portwatch_syscall_exit *ctx) {
  long ret = ctx->ret;
  if (ret != -EADDRINUSE && ret != -EADDRNOTAVAIL && ret != -EACCES) {
    return 0;
  }
  struct pt_regs *regs = current_syscall_regs();
  return count_failure(PORTWATCH_SYSCALL_BIND, ret, PT_REGS_PARM1_CORE_SYSCALL(regs),
                       (const void *)PT_REGS_PARM2_CORE_SYSCALL(regs),
                       PT_REGS_PARM3_CORE_SYSCALL(regs));
}

SEC("tracepoint/syscalls/sys_exit_listen")
int portwatch_tp_listen(struct portwatch_syscall_exit *ctx) {
  long ret = ctx->ret;
  if (ret != -EADDRINUSE) {
    return 0;
  }
  struct pt_regs *regs = current_syscall_regs();
  return count_failure(PORTWATCH_SYSCALL_LISTEN, ret, PT_REGS_PARM1_CORE_SYSCALL(regs), NULL, 0);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int portwatch_tp_connect(struct portwatch_syscall_exit *ctx) {
  long ret = ctx->ret;
  if (ret != -EADDRNOTAVAIL) {
    return 0;
  }
  struct pt_regs *regs = current_syscall_regs();
  return count_failure(PORTWATCH_SYSCALL_CONNECT, ret, PT_REGS_PARM1_CORE_SYSCALL(regs),
                       (const void *)PT_REGS_PARM2_CORE_SYSCALL(regs),
                       PT_REGS_PARM3_CORE_SYSCALL(regs));
}

/* Last resort: every system call's exit. */
SEC("raw_tp/sys_exit")
int portwatch_sys_exit(struct bpf_raw_tracepoint_args *ctx) {
  long ret = (long)ctx->args[1];
  /* The fast path of every other system call. */
  if (ret != -EADDRINUSE && ret != -EADDRNOTAVAIL && ret != -EACCES) {
    return 0;
  }
  struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
  long nr = syscall_nr(regs);
  __u8 syscall = 0;
  if (nr == nr_bind) {
    syscall = PORTWATCH_SYSCALL_BIND;
  } else if (nr == nr_listen && ret == -EADDRINUSE) {
    syscall = PORTWATCH_SYSCALL_LISTEN;
  } else if (nr == nr_connect && ret == -EADDRNOTAVAIL) {
    syscall = PORTWATCH_SYSCALL_CONNECT;
  } else {
    return 0;
  }
  return count_failure(syscall, ret, PT_REGS_PARM1_CORE_SYSCALL(regs),
                       (const void *)PT_REGS_PARM2_CORE_SYSCALL(regs),
                       PT_REGS_PARM3_CORE_SYSCALL(regs));
}
