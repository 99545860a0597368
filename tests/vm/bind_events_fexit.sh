#!/bin/sh
# Runs inside the VM (tests/vm/CMakeLists.txt, e2e.bind_events_fexit_vm): the bind_events e2e
# tests that count failures exactly, on a kernel that accepts fexit programs, where they must
# attach with fexit.
#   bind_events_fexit.sh BIND_EVENTS_E2E_TEST
set -eu
test_binary=$1

echo "bind_events_fexit: kernel $(uname -r)"
if [ ! -e /sys/kernel/btf/vmlinux ]; then
  echo "bind_events_fexit: FAIL: /sys/kernel/btf/vmlinux missing: this kernel cannot load CO-RE programs"
  exit 1
fi
echo "bind_events_fexit: /sys/kernel/btf/vmlinux present ($(wc -c </sys/kernel/btf/vmlinux) bytes)"

# Both tests scrape exact counts; with PORTWATCH_E2E_KERNEL_ALLOWS_FEXIT=1 they require
# portwatch_bind_events_attach_info{attach="fexit"} and the start-up line attach=fexit: the
# default config (fexit only) and the config that also allows tracepoint, which must still
# choose fexit.
tests='BindEventsE2eTest.DefaultAttachesOnlyWhereItCostsOthersNothing:BindEventsE2eTest.CountersEqualTheFailuresExactly'
expected=2
status=0
PORTWATCH_E2E_KERNEL_ALLOWS_FEXIT=1 "$test_binary" --gtest_filter="$tests" --gtest_color=no \
  >/tmp/bind_events_fexit.log 2>&1 || status=$?
cat /tmp/bind_events_fexit.log
if [ "$status" -ne 0 ]; then
  exit "$status"
fi
# A filter that matches nothing passes: a renamed test must not turn this into a no-op.
if ! grep -q "^\[  PASSED  \] $expected tests\." /tmp/bind_events_fexit.log; then
  echo "bind_events_fexit: FAIL: expected $expected tests to run and pass ($tests)"
  exit 1
fi
echo "bind_events_fexit: PASS: exact counts with attach=fexit on $(uname -r)"
