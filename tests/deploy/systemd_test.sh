#!/usr/bin/env bash
# deploy/systemd/portwatch_exporter.service passes `systemd-analyze verify` without a single
# warning (verify exits 0 on unknown keys and bad values, so any output fails), scores at most
# 3.0 ("OK") in `systemd-analyze security`, and deliberately broken copies fail the same checks.
# The unit's ExecStart (/usr/local/bin/portwatch_exporter) must exist for verify: the checks run
# in a private mount namespace with the built binary mounted there (needs root, like the e2e
# tests).
#   systemd_test.sh SOURCE_DIR EXPORTER_BINARY
set -euo pipefail
source_dir=$1 binary=$2
unit=$source_dir/deploy/systemd/portwatch_exporter.service
if [ "${PORTWATCH_IN_MOUNT_NAMESPACE:-}" != 1 ]; then
  command -v systemd-analyze >/dev/null || { echo "systemd-analyze is missing (package systemd)"; exit 1; }
  exec env PORTWATCH_IN_MOUNT_NAMESPACE=1 unshare --mount --propagation private bash "$0" "$@"
fi
mount -t tmpfs tmpfs /usr/local/bin
cp "$binary" /usr/local/bin/portwatch_exporter
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

verify() {  # verify UNIT: prints verify's complaints; status 0 when there are none
  local output
  output=$(cd "$(dirname "$1")" && systemd-analyze verify --man=no "./$(basename "$1")" 2>&1) || {
    echo "$output (exit status $?)"; return 1; }
  [ -z "$output" ] || { echo "$output"; return 1; }
}
security() {  # security UNIT: the overall exposure line; status 0 when at most 3.0
  systemd-analyze security --offline=yes --threshold=30 --no-pager "$1" 2>&1 | grep 'Overall exposure'
  return "${PIPESTATUS[0]}"
}

if output=$(verify "$unit"); then echo "ok: verify"; else fail "verify: $output"; fi
if output=$(security "$unit"); then echo "ok: $output"; else fail "security: $output"; fi

# Broken copies: [text, replacement, what verify must say].
check_broken() {
  local text=$1 replacement=$2 expected=$3 copy=$scratch/portwatch_exporter.service output
  grep -qF -- "$text" "$unit" || { fail "the unit no longer contains '$text': update this test"; return; }
  sed "s|$text|$replacement|" "$unit" > "$copy"
  if output=$(verify "$copy"); then
    fail "verify accepted a copy with '$replacement'"
  elif grep -qF -- "$expected" <<< "$output"; then
    echo "ok: verify rejects '$replacement'"
  else
    fail "verify on '$replacement' did not say '$expected': $output"
  fi
}
check_broken "ProtectSystem=strict" "ProtectSytem=strict" "Unknown key 'ProtectSytem'"
check_broken "ProtectSystem=strict" "ProtectSystem=stirct" "Failed to parse protect system value"
check_broken "@system-service" "@system-servce" "Unknown system call group"
check_broken "RestrictAddressFamilies=AF_UNIX" "RestrictAddressFamilies=AF_UNIKS" \
  "Failed to parse address family"
check_broken "ExecStart=/usr/local/bin/portwatch_exporter" "ExecStart=/usr/local/bin/portwatch" \
  "is not executable"

# Without its hardening the unit scores worse than the threshold.
grep -vE '^(Protect|Private|Restrict|SystemCall|CapabilityBoundingSet|NoNewPrivileges|DynamicUser|LockPersonality|MemoryDeny|RemoveIPC|UMask|ProcSubset)' \
  "$unit" > "$scratch/portwatch_exporter.service"
if output=$(security "$scratch/portwatch_exporter.service"); then
  fail "security accepted the unit without hardening: $output"
else
  echo "ok: without hardening: $output"
fi

[ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "all systemd unit checks passed"
