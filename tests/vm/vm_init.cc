// PID 1 of the test VM that tests/vm/vm_run.sh boots (see tests/vm/README.md). Built static so
// that the initramfs needs nothing else: it loads the virtio/9p modules listed in
// /modules/order, mounts the host's root file system read-only over virtio-9p with fresh
// proc/sys/dev/run/bpf/tracefs/cgroup2 and a writable overlay on /tmp on top, runs
// /run/portwatch-vm/command.sh (written by the host into the writable "job" share) in a chroot
// there, prints the exit-status marker that the host looks for on the serial console and powers the
// VM off.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <net/if.h>
#include <string>
#include <vector>

namespace {

constexpr const char* kRoot = "/newroot";
constexpr const char* kJobDir = "/run/portwatch-vm";  // inside the new root
// 9p mounts can appear a moment after the transport module probed its device: retry briefly.
constexpr int kMountAttempts = 50;
constexpr int kMountRetryMilliseconds = 100;

void Say(const std::string& text) {
  const std::string line = "portwatch-vm: " + text + "\n";
  (void)!::write(STDOUT_FILENO, line.data(), line.size());
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

/// Ends the VM. Falls through to exiting PID 1 (a kernel panic, which `panic=-1` and qemu's
/// -no-reboot also turn into the end of qemu) only when the power-off itself fails.
[[noreturn]] void PowerOff() {
  ::sync();
  ::reboot(RB_POWER_OFF);
  Say(Errno("reboot(RB_POWER_OFF)"));
  std::_Exit(1);
}

/// A setup step failed: there is no point going on. The host sees no exit marker and says so.
[[noreturn]] void Fail(const std::string& why) {
  Say("init failed: " + why);
  PowerOff();
}

void MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    Fail(Errno("mkdir " + path));
  }
}

void Mount(const std::string& source, const std::string& target, const std::string& type,
           unsigned long flags, const std::string& options) {
  if (::mount(source.c_str(), target.c_str(), type.c_str(), flags,
              options.empty() ? nullptr : options.c_str()) != 0) {
    Fail(Errno("mount " + type + " " + source + " on " + target));
  }
}

/// A 9p share by its mount tag, retried while the virtio transport is still coming up.
void Mount9p(const std::string& tag, const std::string& target, unsigned long flags,
             const std::string& options) {
  const std::string all = "trans=virtio,version=9p2000.L,msize=262144," + options;
  for (int attempt = 1;; ++attempt) {
    if (::mount(tag.c_str(), target.c_str(), "9p", flags, all.c_str()) == 0) {
      return;
    }
    if (attempt == kMountAttempts || (errno != ENOENT && errno != ENODEV)) {
      Fail(Errno("mount 9p " + tag + " on " + target + " (" + all + ")"));
    }
    const timespec pause{0, kMountRetryMilliseconds * 1000L * 1000L};
    ::nanosleep(&pause, nullptr);
  }
}

/// fds 0-2: stdin from /dev/null (a command that reads stdin must not wait on the serial
/// line), stdout and stderr to the console, which qemu writes to the host's log.
void OpenConsole() {
  MakeDir("/dev");
  if (::mount("devtmpfs", "/dev", "devtmpfs", 0, nullptr) != 0 && errno != EBUSY) {
    std::_Exit(1);  // nowhere to say it yet: the host reports the missing exit marker
  }
  const int console = ::open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
  const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (console < 0 || null < 0) {
    std::_Exit(1);
  }
  ::dup2(null, STDIN_FILENO);
  ::dup2(console, STDOUT_FILENO);
  ::dup2(console, STDERR_FILENO);
}

/// The modules, in dependency order (vm_run.sh wrote /modules/order from their .modinfo).
void LoadModules() {
  std::ifstream order("/modules/order");
  std::string name;
  while (std::getline(order, name)) {
    if (name.empty()) {
      continue;
    }
    const std::string path = "/modules/" + name + ".ko";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      Fail(Errno("open " + path));
    }
    if (::syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST) {
      Fail(Errno("finit_module " + path));
    }
    ::close(fd);
  }
}

/// Some commands expect 127.0.0.1 to work in the initial network namespace.
void LoopbackUp() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (fd < 0 || ::ioctl(fd, SIOCGIFFLAGS, &request) != 0) {
    Say(Errno("lo: SIOCGIFFLAGS"));
  } else {
    request.ifr_flags |= IFF_UP;
    if (::ioctl(fd, SIOCSIFFLAGS, &request) != 0) {
      Say(Errno("lo: SIOCSIFFLAGS"));
    }
  }
  if (fd >= 0) {
    ::close(fd);
  }
}

void MountNewRoot() {
  MakeDir(kRoot);
  const std::string root = kRoot;
  // cache=loose: executables and libraries are read through the page cache; the share is
  // read-only and the run short, so staleness does not matter.
  Mount9p("hostroot", root, MS_RDONLY, "cache=loose");
  // The host's own mount points (/proc, /sys, /dev, /tmp, /run) exist on the shared root.
  Mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  Mount("sysfs", root + "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  Mount("devtmpfs", root + "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  MakeDir(root + "/dev/pts");
  Mount("devpts", root + "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666");
  MakeDir(root + "/dev/shm");
  Mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  // /tmp writable, yet showing the host's /tmp underneath: a build tree or the caller's working
  // directory may live there (a plain tmpfs hid them). An overlay with its upper layer on a
  // tmpfs outside the new root.
  MakeDir("/tmp-upper");
  Mount("tmpfs", "/tmp-upper", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  MakeDir("/tmp-upper/upper");
  MakeDir("/tmp-upper/work");
  if (::chmod("/tmp-upper/upper", 01777) != 0) {
    Fail(Errno("chmod /tmp-upper/upper"));
  }
  Mount("overlay", root + "/tmp", "overlay", MS_NOSUID | MS_NODEV,
        "lowerdir=" + root + "/tmp,upperdir=/tmp-upper/upper,workdir=/tmp-upper/work");
  Mount("tmpfs", root + "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  Mount("bpf", root + "/sys/fs/bpf", "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700");
  Mount("tracefs", root + "/sys/kernel/tracing", "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  Mount("debugfs", root + "/sys/kernel/debug", "debugfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  Mount("cgroup2", root + "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  // The job share: the command script in, anything the command writes there out. No cache:
  // what the command writes is on the host as soon as it is written.
  MakeDir(root + kJobDir);
  Mount9p("job", root + kJobDir, 0, "cache=none");
}

/// Runs the command in the new root; its wait status.
int RunCommand() {
  const pid_t child = ::fork();
  if (child < 0) {
    Fail(Errno("fork"));
  }
  if (child == 0) {
    ::setsid();
    if (::chroot(kRoot) != 0 || ::chdir("/") != 0) {
      Say(Errno("chroot"));
      std::_Exit(127);
    }
    const std::string script = std::string(kJobDir) + "/command.sh";
    const char* argv[] = {"/bin/sh", script.c_str(), nullptr};
    const char* envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "HOME=/root", "TERM=dumb", "LANG=C.UTF-8", nullptr};
    ::execve(argv[0], const_cast<char* const*>(argv), const_cast<char* const*>(envp));
    Say(Errno("exec /bin/sh"));
    std::_Exit(127);
  }
  // PID 1 reaps every orphan too. Bounded by the command's own end (the host kills the whole
  // VM when its timeout runs out).
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid == child) {
      return status;
    }
    if (pid < 0 && errno != EINTR) {
      Fail(Errno("waitpid"));
    }
  }
}

/// Whatever the command left running, so that the job share is quiet before power-off.
void KillTheRest() {
  ::kill(-1, SIGKILL);
  // SIGKILLed processes exit promptly; 1000 reaps at most (ECHILD ends it sooner).
  for (int i = 0; i < 1000 && ::waitpid(-1, nullptr, 0) > 0; ++i) {
  }
}

/// The kernel's module loader helper (/sbin/modprobe in the initramfs links here): the guest has
/// no modprobe and no module index, only the modules vm_run.sh put in the initramfs. Says which
/// module the kernel wanted (a feature that a stock Debian system may load on demand; some
/// requests, like bpf_preload's at every bpffs mount, fail there too) where the console shows
/// it, and fails the request.
int ModprobeStub(int argc, char** argv) {
  const std::string wanted = argc > 1 ? argv[argc - 1] : "?";
  const std::string line = "<3>portwatch-vm: the kernel asked for module " + wanted +
                           "; nothing is loaded on demand here (if the command needs it: "
                           "vm_run.sh --module NAME)\n";
  const int kmsg = ::open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
  if (kmsg >= 0) {
    (void)!::write(kmsg, line.data(), line.size());
    ::close(kmsg);
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 0 && std::string(argv[0]).ends_with("modprobe")) {
    return ModprobeStub(argc, argv);
  }
  OpenConsole();
  Say("init started");  // vm_run.sh's sign that the guest kernel booted (KVM watchdog)
  LoadModules();
  MountNewRoot();
  LoopbackUp();
  (void)::sethostname("portwatch-vm", 12);
  const int status = RunCommand();
  KillTheRest();
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  // The kernel passes unknown key=value boot parameters to init's environment: the host's
  // nonce makes the marker one that the command's own output cannot imitate by accident.
  const char* nonce = std::getenv("portwatch_vm_nonce");
  const std::string marker = std::string("\nPORTWATCH_VM_EXIT ") + (nonce ? nonce : "-") + " " +
                             std::to_string(code) + "\n";
  ::sync();
  (void)!::write(STDOUT_FILENO, marker.data(), marker.size());
  PowerOff();
}
