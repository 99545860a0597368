#!/usr/bin/env bash
# Runs one fuzz target for a bounded time over its seeds and regression inputs, as ctest does:
#   tests/fuzz/run_fuzzer.sh NAME BINARY WORK_DIR SECONDS [libFuzzer flags...]
# New inputs and crash artifacts go to WORK_DIR (in the build tree), never into the sources.
set -euo pipefail
name=$1 binary=$2 work=$3 seconds=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work/corpus" "$work/artifacts"
corpora=("$work/corpus" "$here/corpus/$name")
if [ -d "$here/regressions/$name" ]; then
  corpora+=("$here/regressions/$name")
fi
exec "$binary" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$@" "${corpora[@]}"
