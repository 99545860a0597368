#!/usr/bin/env bash
# portwatch's one entry point for set-up, build, run and test on a Debian machine.
#   tools/dev.sh run [exporter flags...]  install what is needed, build, run the exporter
#   tools/dev.sh test                     install what is needed, build, run every test
#                                         (a normal build, then again under ASan+UBSan)
#   tools/dev.sh bench                    build and run the benchmarks (root, needs netns)
set -euo pipefail
cd "$(dirname "$0")/.."

# What building and running the exporter needs (tools/dev.sh run installs only these).
BUILD_PACKAGES=(
  g++ cmake make pkg-config git ca-certificates
  prometheus-cpp-dev libcivetweb-dev libyaml-cpp-dev libre2-dev zlib1g-dev libssl-dev libcrypt-dev libcap-dev libspdlog-dev libcli11-dev nlohmann-json3-dev
  # the bind_events collector's eBPF program (CMake option PORTWATCH_BPF)
  clang bpftool libbpf-dev
)
# What the tests add (tools/dev.sh test installs both lists).
TEST_PACKAGES=(
  libgtest-dev libgmock-dev
  # the libFuzzer targets of tests/fuzz (clang's fuzzer and sanitizer runtimes)
  libclang-rt-dev
  iproute2 procps curl prometheus clang-format clang-tidy
  # deploy tests: container image (podman with runc, a debootstrapped base), manifest schemas
  # (node), systemd-analyze
  podman runc debootstrap nodejs systemd
  # tests/vm: Debian's kernel (fetched with apt-get download) under qemu for the bind_events fexit
  # test and benchmark; cpio packs the VM's initramfs
  qemu-system-x86 cpio
)

# The test binaries the ThreadSanitizer build runs (target tsan_tests builds them).
TSAN_TEST_BINARIES="unit_test e2e_test bind_events_e2e_test bind_events_unit_test pods_e2e_test"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_deps() {  # install_deps PACKAGE...: apt-get install those not installed yet
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

build() {  # build DIR [cmake args...]; BUILD_TARGET=NAME builds that target instead of all
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
}

case "${1:-}" in
  run)
    shift
    install_deps "${BUILD_PACKAGES[@]}"
    build build/release -DPORTWATCH_BUILD_TESTS=OFF
    exec build/release/portwatch_exporter "$@"
    ;;
  test)
    # Some machines' nodejs already ships npm (and conflicts with Debian's npm package).
    command -v npm >/dev/null || TEST_PACKAGES+=(npm)
    install_deps "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    build build/release -DPORTWATCH_BUILD_TESTS=ON
    (cd build/release && ctest --output-on-failure -j "$(nproc)")
    build build/sanitize -DPORTWATCH_SANITIZE=ON -DPORTWATCH_LINT=OFF
    (cd build/sanitize && ctest --output-on-failure -j "$(nproc)")
    # ThreadSanitizer on the binaries whose code runs threads: the web server, the collector
    # runner, reload and bind events (the exporter the end-to-end tests start is built with it)
    BUILD_TARGET=tsan_tests build build/tsan -DPORTWATCH_TSAN=ON -DPORTWATCH_LINT=OFF
    (cd build/tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
      ctest --output-on-failure -j "$(nproc)" -L "^(${TSAN_TEST_BINARIES// /|})$")
    # libFuzzer targets (clang), each fuzzing for a bounded time: tests/fuzz/README.md
    BUILD_TARGET=fuzz_targets build build/fuzz -DCMAKE_CXX_COMPILER=clang++ -DPORTWATCH_FUZZ=ON \
      -DPORTWATCH_LINT=OFF -DPORTWATCH_BPF=OFF
    (cd build/fuzz && ctest --output-on-failure -j "$(nproc)")
    ;;
  bench)
    shift
    install_deps "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    build build/release -DPORTWATCH_BUILD_TESTS=ON
    cmake --build build/release --target bench -- ARGS="$*"
    ;;
  *)
    echo "usage: tools/dev.sh run [flags...] | test | bench" >&2
    exit 2
    ;;
esac
