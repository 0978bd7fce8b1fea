#!/bin/sh
# Runs a libFuzzer target for a bounded time on a copy of its corpus, so that the kept corpus in
# the repository is never modified; crash files go into the copy's directory.
#   live.sh FUZZER CORPUS WORKDIR SECONDS
set -eu
fuzzer=$1 corpus=$2 work=$3 seconds=$4
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp "$corpus"/* "$work/corpus/"
# A finding must fail the test: libFuzzer's default exit code, 77, is meson's "skipped".
exec "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -error_exitcode=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus"
