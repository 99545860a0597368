#!/usr/bin/env bash
# Runs one command as root inside a qemu VM that boots Debian's own kernel (the package the
# linux-image-amd64 metapackage depends on) with this machine's root file system shared
# read-only, and exits with the command's exit status. Why and how: tests/vm/README.md.
#
#   tests/vm/vm_run.sh [options] -- COMMAND [ARG...]
#     --cache-dir DIR    kernel package download and extraction (default $PORTWATCH_VM_CACHE,
#                        else ./vm-cache); kept between runs
#     --init FILE        the static init built from vm_init.cc (default: compiled here into
#                        the cache dir with c++ -static)
#     --timeout SECONDS  whole run, boot included (default 900); then qemu is killed, exit 124
#     --accel MODE       auto (default, $PORTWATCH_VM_ACCEL): KVM when the CPU has vmx/svm and
#                        the guest boots under it, else TCG; kvm or tcg force one
#     --smp N            vCPUs (default 2)     --memory MIB   guest memory (default 2048)
#     --icount           TCG with a virtual clock that counts guest instructions (1 ns each):
#                        timings inside become instruction counts, immune to host load
#     --env NAME=VALUE   exported before COMMAND runs (repeatable)
#     --module NAME      also load this kernel module at boot (repeatable)
#     --chdir DIR        the command's working directory (default: the current one)
#     --quiet            do not stream the console; it is still shown when the run fails
#     --prepare-only     fetch and extract the kernel, then exit
# Exit status: the command's; 124 on timeout; 125 when the VM could not run the command (no
# qemu, no kernel package, no exit marker on the console: the reason is printed).
# $PORTWATCH_VM_KERNEL_PACKAGE pins the kernel package (e.g. linux-image-6.1.0-56-amd64).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_dir=${PORTWATCH_VM_CACHE:-$PWD/vm-cache}
init=""
timeout_seconds=900
accel=${PORTWATCH_VM_ACCEL:-auto}
smp=2
memory=2048
quiet=0
icount=0
prepare_only=0
workdir=$PWD
envs=()
# Seconds the guest gets under KVM to print init's first line before TCG takes over: a kernel
# that cannot run under this host's KVM (e.g. a PVM host, which needs a PVM-aware guest) hangs
# in early boot instead of failing.
kvm_boot_seconds=${PORTWATCH_VM_KVM_BOOT_SECONDS:-30}
# Modules loaded at boot, as the kernel names them; their dependencies follow from each module's
# .modinfo. The guest cannot load modules on demand (no modprobe, no module index): the 9p root
# needs the first three, /tmp the overlay; sock_diag for TCP and UDP (which Debian loads on first
# use) the others.
wanted_modules=(virtio_pci 9pnet_virtio 9p overlay inet_diag tcp_diag udp_diag)

say() { echo "vm_run: $*" >&2; }
die() {
  say "error: $*"
  exit 125
}

while [ $# -gt 0 ]; do
  case $1 in
    --cache-dir) cache_dir=$2; shift 2 ;;
    --init) init=$2; shift 2 ;;
    --timeout) timeout_seconds=$2; shift 2 ;;
    --accel) accel=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --module) wanted_modules+=("$2"); shift 2 ;;
    --chdir) workdir=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    --icount) icount=1; shift ;;
    --prepare-only) prepare_only=1; shift ;;
    --) shift; break ;;
    *) die "unknown option $1 (usage: see the top of $0)" ;;
  esac
done
[ $# -gt 0 ] || [ "$prepare_only" = 1 ] || die "no command (usage: $0 [options] -- COMMAND [ARG...])"
case $accel in auto | kvm | tcg) ;; *) die "--accel must be auto, kvm or tcg, not $accel" ;; esac
[[ $timeout_seconds =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"
if [ "$icount" = 1 ]; then
  [ "$accel" != kvm ] || die "--icount needs TCG"
  accel=tcg  # instruction counting is a TCG feature
fi

qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || die "qemu-system-x86_64 not found: apt-get install qemu-system-x86 (tools/dev.sh installs it)"
[ "$(uname -m)" = x86_64 ] || die "x86_64 hosts only (Debian's amd64 kernel)"
for tool in apt-get dpkg cpio flock timeout; do
  command -v "$tool" >/dev/null || die "$tool not found (tools/dev.sh installs what is needed)"
done

mkdir -p "$cache_dir"
cache_dir=$(cd "$cache_dir" && pwd)

# The package linux-image-amd64 depends on now (empty when apt cannot tell).
resolve_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}

# Package lists missing or stale (the archive keeps only the newest kernel): refresh them once,
# when allowed to.
refresh_package_lists() {
  [ "$(id -u)" = 0 ] || return 1
  say "apt-get update (package lists missing or stale)"
  apt-get update -qq >&2
}

# As root, apt-get would warn that its sandbox user cannot write to DIR: download as root.
download_package() {  # download_package PACKAGE DIR
  (cd "$2" && apt-get download -q -o APT::Sandbox::User=root "$1" >&2)
}

# The kernel: download and extract once per package version, under a lock (ctest may start
# two VM tests at once). Leaves $kernel_root set. A failed download refreshes the package lists
# and tries again once (the archive keeps only the newest kernel of a series).
prepare_kernel() {
  local attempt package cached deb
  for attempt in 1 2; do
    package=${PORTWATCH_VM_KERNEL_PACKAGE:-$(resolve_package)}
    if [ -z "$package" ] && [ "$attempt" = 1 ] && refresh_package_lists; then
      package=$(resolve_package)
    fi
    if [ -z "$package" ]; then
      # Offline: a kernel extracted earlier still does.
      cached=$(find "$cache_dir" -maxdepth 2 -name .extracted -printf '%h\n' 2>/dev/null | sort | tail -1)
      [ -n "$cached" ] || die "cannot tell which kernel linux-image-amd64 depends on (apt-cache depends linux-image-amd64; run apt-get update) and no kernel in $cache_dir"
      package=$(basename "$cached")
      say "apt-cache cannot resolve linux-image-amd64; using the cached $package"
    fi
    kernel_root=$cache_dir/$package
    [ ! -e "$kernel_root/.extracted" ] || return 0
    say "fetching $package (apt-get download, once; cached in $cache_dir)"
    rm -rf "$kernel_root"
    mkdir -p "$kernel_root/deb"
    if download_package "$package" "$kernel_root/deb"; then
      break
    fi
    rm -rf "$kernel_root"
    if [ "$attempt" = 2 ] || ! refresh_package_lists; then
      die "apt-get download $package failed: is Debian's archive reachable (apt-get update)?"
    fi
  done
  deb=$(find "$kernel_root/deb" -name '*.deb' | head -1)
  [ -n "$deb" ] || die "apt-get download $package left no .deb"
  dpkg -x "$deb" "$kernel_root/root" || die "dpkg -x $deb failed"
  touch "$kernel_root/.extracted"
  # Older versions are of no further use.
  find "$cache_dir" -mindepth 1 -maxdepth 1 -type d -name 'linux-image-*' ! -name "$package" \
    -exec rm -rf {} +
}

# The init: the one given, else compiled from the source next to this script.
prepare_init() {
  if [ -n "$init" ]; then
    [ -x "$init" ] || die "--init $init is not an executable"
    return
  fi
  init=$cache_dir/vm_init
  if [ ! -x "$init" ] || [ "$here/vm_init.cc" -nt "$init" ]; then
    say "compiling $here/vm_init.cc"
    c++ -std=c++20 -O2 -static -o "$init.tmp" "$here/vm_init.cc" || die "cannot compile vm_init.cc"
    mv "$init.tmp" "$init"
  fi
}

# Held until this run has copied what it needs from the cache: a run that fetches a newer
# kernel removes the older one.
exec 9>"$cache_dir/lock"
flock -w "$timeout_seconds" 9 || die "timed out waiting for the lock on $cache_dir"
prepare_kernel
prepare_init

vmlinuz=$(find "$kernel_root/root/boot" -maxdepth 1 -name 'vmlinuz-*' | head -1)
moddir=$(find "$kernel_root/root/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -1)
if [ -z "$vmlinuz" ] || [ -z "$moddir" ]; then
  die "$kernel_root/root has no boot/vmlinuz-* or lib/modules/*: remove $kernel_root and retry"
fi
kernel_version=$(basename "$moddir")
package_version=$(dpkg-deb -f "$(find "$kernel_root/deb" -name '*.deb' | head -1)" Version 2>/dev/null || echo "?")
say "kernel $kernel_version (package $(basename "$kernel_root") $package_version)"
if [ "$prepare_only" = 1 ]; then
  exit 0
fi

job=$(mktemp -d "${TMPDIR:-/tmp}/portwatch-vm.XXXXXX")
qemu_pid=""
cleanup() {
  if [ -n "$qemu_pid" ]; then
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
  fi
  rm -rf "$job"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The initramfs: init and the modules, in dependency order (modules.dep is written by depmod on
# installation, which the package never had here, so the order comes from .modinfo).
mkdir -p "$job/initramfs/modules" "$job/initramfs/sbin" "$job/share"
cp "$init" "$job/initramfs/init"
ln -s ../init "$job/initramfs/sbin/modprobe"  # the kernel's module helper: says what it wanted
declare -A module_path=() module_done=()
while IFS= read -r -d '' ko; do
  name=${ko##*/}
  name=${name%%.ko*}
  module_path[${name//-/_}]=$ko
done < <(find "$moddir/kernel" -name '*.ko*' -print0)
module_order=()
add_module() {  # add_module NAME DEPTH
  local name=${1//-/_} depth=$2 ko target deps dep
  [ -z "${module_done[$name]:-}" ] || return 0
  module_done[$name]=1
  (( depth < 16 )) || die "module dependencies nested too deep at $name"
  if grep -q -E "/${1}\.ko(\..*)?$|/${name}\.ko(\..*)?$" "$moddir/modules.builtin" 2>/dev/null; then
    return 0  # built into this kernel
  fi
  ko=${module_path[$name]:-}
  [ -n "$ko" ] || die "module $name is neither in $moddir nor built in"
  target=$job/initramfs/modules/$name.ko
  # Compressed modules would need a kernel with in-kernel decompression: decompress here.
  case $ko in
    *.ko.xz) xz -dc "$ko" >"$target" ;;
    *.ko.zst) zstd -q -dc "$ko" >"$target" ;;
    *.ko.gz) gzip -dc "$ko" >"$target" ;;
    *) cp "$ko" "$target" ;;
  esac
  deps=$(tr '\0' '\n' <"$target" | sed -n 's/^depends=//p' | head -1)
  for dep in ${deps//,/ }; do
    add_module "$dep" $((depth + 1))
  done
  module_order+=("$name")
}
for module in "${wanted_modules[@]}"; do
  add_module "$module" 0
done
printf '%s\n' "${module_order[@]}" >"$job/initramfs/modules/order"
(cd "$job/initramfs" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) >"$job/initramfs.cpio" ||
  die "cpio failed"
cp "$vmlinuz" "$job/vmlinuz"
flock -u 9
exec 9>&-

# The command, quoted for /bin/sh: each word in single quotes, a quote as '\''.
quote() {
  local word=$1
  printf "'%s'" "${word//\'/\'\\\'\'}"
}
{
  echo "# written by vm_run.sh"
  printf 'cd %s || exit 125\n' "$(quote "$workdir")"
  for assignment in "${envs[@]}"; do
    [[ $assignment =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env $assignment is not NAME=VALUE"
    printf 'export %s=%s\n' "${assignment%%=*}" "$(quote "${assignment#*=}")"
  done
  printf 'exec'
  for word in "$@"; do
    printf ' %s' "$(quote "$word")"
  done
  printf '\n'
} >"$job/share/command.sh"

nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
start=$SECONDS

# boot ACCEL WATCHDOG: runs qemu until it exits; with WATCHDOG, gives up (status 200) when init
# has not said it started within $kvm_boot_seconds. Leaves qemu's status in $qemu_status.
boot() {
  local mode=$1 watchdog=$2 cpu extra=()
  if [ "$mode" = kvm ]; then cpu=host; else cpu=max; fi
  # sleep=off: an idle guest skips ahead instead of waiting in real time.
  [ "$icount" = 0 ] || extra=(-icount "shift=0,sleep=off,align=off")
  : >"$job/console.log"
  timeout --kill-after=10 "$timeout_seconds" "$qemu" \
    -nodefaults -no-user-config -display none -monitor none -no-reboot \
    -machine pc -accel "$mode" -cpu "$cpu" -smp "$smp" -m "$memory" "${extra[@]}" \
    -kernel "$job/vmlinuz" -initrd "$job/initramfs.cpio" \
    -append "console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init portwatch_vm_nonce=$nonce" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$job/share,mount_tag=job,security_model=none,multidevs=remap" \
    -chardev "file,id=console,path=$job/console.log" -serial chardev:console \
    2>"$job/qemu.err" &
  qemu_pid=$!
  local tail_pid=""
  if [ "$quiet" = 0 ]; then
    # sed -u: line by line, also when the output is a file or a pipe (ctest, make).
    tail -n +1 -f --pid="$qemu_pid" "$job/console.log" | sed -u 's/\r$//' &
    tail_pid=$!
  fi
  if [ "$watchdog" = 1 ]; then
    local waited=0
    while ! grep -q 'portwatch-vm: init started' "$job/console.log"; do
      if ! kill -0 "$qemu_pid" 2>/dev/null || (( waited >= kvm_boot_seconds * 2 )); then
        break
      fi
      sleep 0.5
      waited=$((waited + 1))
    done
    if ! grep -q 'portwatch-vm: init started' "$job/console.log"; then
      kill "$qemu_pid" 2>/dev/null || true
      wait "$qemu_pid" 2>/dev/null || true
      qemu_pid=""
      [ -z "$tail_pid" ] || wait "$tail_pid" 2>/dev/null || true
      qemu_status=200
      return
    fi
  fi
  qemu_status=0
  wait "$qemu_pid" || qemu_status=$?
  qemu_pid=""
  [ -z "$tail_pid" ] || wait "$tail_pid" 2>/dev/null || true
}

used=""
if [ "$accel" != tcg ]; then
  kvm_ok=1
  why=""
  if [ ! -w /dev/kvm ]; then
    kvm_ok=0 why="/dev/kvm missing or not writable"
  elif [ "$accel" = auto ] && ! grep -q -w -E 'vmx|svm' /proc/cpuinfo; then
    # A /dev/kvm without hardware virtualisation is a paravirtual one (PVM) that runs only
    # guests built for it: Debian's kernel hangs there in its first steps.
    kvm_ok=0 why="/dev/kvm exists but the CPU has no vmx/svm flag"
  fi
  if [ "$kvm_ok" = 1 ]; then
    boot kvm "$([ "$accel" = auto ] && echo 1 || echo 0)"
    if [ "$qemu_status" != 200 ]; then
      used=kvm
    else
      why="under KVM the guest did not start init within ${kvm_boot_seconds}s ($(head -c 300 "$job/qemu.err" | tr '\n' ' '))"
    fi
  elif [ "$accel" = kvm ]; then
    die "--accel kvm: $why"
  fi
  [ -n "$used" ] || say "KVM not used: $why; TCG instead"
fi
if [ -z "$used" ]; then
  start=$SECONDS
  boot tcg 0
  used=tcg
fi
elapsed=$((SECONDS - start))

status=$(tr -d '\r' <"$job/console.log" | sed -n "s/^PORTWATCH_VM_EXIT $nonce \([0-9][0-9]*\)\$/\1/p" | tail -1)
show_failure() {
  if [ "$quiet" = 1 ]; then
    say "console (last 60 lines):"
    tr -d '\r' <"$job/console.log" | tail -60 >&2
  fi
  if [ -s "$job/qemu.err" ]; then
    say "qemu's stderr:"
    head -c 4000 "$job/qemu.err" >&2
  fi
}
if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then
  show_failure
  say "timed out after ${timeout_seconds}s (accel $used): qemu killed"
  exit 124
fi
if [ -z "$status" ]; then
  show_failure
  die "no exit marker on the console (accel $used, qemu exit status $qemu_status, ${elapsed}s): the guest did not run the command to its end"
fi
say "command exited with status $status (accel $used$([ "$icount" = 0 ] || echo ", icount"), smp $smp, ${memory} MiB, ${elapsed}s)"
exit "$status"
