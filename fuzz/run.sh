#!/bin/sh
# Longer, on-demand fuzzing of one target: fuzz/run.sh TARGET SECONDS
# Builds the clang fuzz build in build-fuzz if needed, fuzzes a copy of fuzz/corpus/TARGET for
# SECONDS (one process), then merges whatever added coverage back into fuzz/corpus/TARGET
# (-merge=1 keeps only inputs that add coverage). A crash stops the run; the input is left in
# build-fuzz/fuzz/live-TARGET/artifacts/.
set -eu
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: fuzz/run.sh TARGET SECONDS" >&2; exit 2; }
target=$1 seconds=$2
[ -d "fuzz/corpus/$target" ] || { echo "no corpus fuzz/corpus/$target" >&2; exit 2; }
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=disabled --buildtype=debugoptimized
fi
meson compile -C build-fuzz "fuzz_$target"
work=build-fuzz/fuzz/live-$target
fuzz/live.sh "build-fuzz/fuzz/fuzz_$target" "fuzz/corpus/$target" "$work" "$seconds"
"build-fuzz/fuzz/fuzz_$target" -merge=1 -rss_limit_mb=2048 "fuzz/corpus/$target" "$work/corpus"
echo "fuzz/corpus/$target: $(ls "fuzz/corpus/$target" | wc -l) inputs"
