#!/bin/sh
# Training-speed benchmark of the worker engine against PyTorch, both strictly on one thread.
#
# Runs bench/train_bench (caviar's trainer, the SGEMM peak, allocations, RSS) and
# bench/torch_reference.py (the same network in PyTorch 1.13) for ROUNDS rounds and prints, per
# mini-batch size, the best figure each side reached: examples per second of the fastest
# training epoch (wall clock), their ratio against the target ratio, caviar's GEMM GFLOP/s as a
# fraction of the SGEMM peak measured in the same run, and peak RSS. Best-of-rounds because
# other processes on a shared machine can only slow a run down; the load average is printed.
#
# PyTorch runs twice per round: as installed, and with glibc malloc told not to return memory
# to the kernel (MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_, MALLOC_TOP_PAD_), which stops
# the page faults its per-step tensor allocations otherwise cost. The faster of the two is the
# reference the targets are judged against, so a PASS does not rest on PyTorch's allocator.
#
# OpenBLAS picks its kernels from OPENBLAS_CORETYPE when set (both programs inherit it; this
# script does not change it) and by CPU detection otherwise; train_bench prints the core used.
#
# A benchmark, not a test: it exits 0 whatever the figures, printing PASS or MISS per target.
# Usage: bench/train_speed.sh [BUILD_DIR [ROUNDS]]   (BUILD_DIR from `meson setup`, default
# build; ROUNDS default 3). Other batch sizes: BATCHES="64 256 512". TRAIN_SPEED_LOGS=DIR keeps
# every round's raw output in DIR.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${1:-build}
rounds=${2:-3}
batches=${BATCHES:-64 256}
python=/usr/bin/python3
case $build in /*) ;; *) build=$root/$build ;; esac

if [ ! -f "$build/build.ninja" ]; then
    echo "train_speed: $build is not a meson build directory; run: meson setup $build" >&2
    exit 0
fi
if ! ninja -C "$build" bench/train_bench >/dev/null; then
    echo "train_speed: building bench/train_bench in $build failed" >&2
    exit 0
fi

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
if [ -n "${TRAIN_SPEED_LOGS:-}" ]; then # keep every round's raw output there
    logs=$TRAIN_SPEED_LOGS
    mkdir -p "$logs" || exit 0
else
    logs=$(mktemp -d "${TMPDIR:-/tmp}/train_speed.XXXXXX")
    trap 'rm -rf "$logs"' EXIT INT TERM
fi
torch_batches=$(echo "$batches" | tr ' ' ',')

echo "train_speed: $rounds round(s), batches $batches, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(unset)}," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
r=1
while [ "$r" -le "$rounds" ]; do
    # shellcheck disable=SC2086 # batch sizes are separate arguments
    "$build/bench/train_bench" $batches >"$logs/caviar.$r" 2>&1 ||
        echo "train_speed: train_bench failed in round $r (see below)" >&2
    "$python" "$here/torch_reference.py" --batches "$torch_batches" --epochs 3 \
        >"$logs/torch.$r" 2>&1 || echo "train_speed: torch_reference.py failed in round $r" >&2
    MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_MMAP_THRESHOLD_=1073741824 \
    MALLOC_TOP_PAD_=268435456 \
        "$python" "$here/torch_reference.py" --batches "$torch_batches" --epochs 3 \
        >"$logs/torch_malloc.$r" 2>&1 ||
        echo "train_speed: torch_reference.py (malloc-tuned) failed in round $r" >&2
    echo "train_speed: round $r done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    r=$((r + 1))
done

echo
echo "== raw figures (round 1; all rounds are summarized below)"
cat "$logs/caviar.1" "$logs/torch.1"
sed 's/^torch /torch_malloc_tuned /' "$logs/torch_malloc.1"
echo

# Every record is "kind key=value ...". The awk program keeps the best value per key over the
# rounds and prints the table and the verdicts.
{
    for f in "$logs"/caviar.*; do sed 's/^/C /' "$f"; done
    for f in "$logs"/torch.*; do sed 's/^/T /' "$f"; done
    for f in "$logs"/torch_malloc.*; do sed 's/^/M /' "$f"; done
} | awk -v targets="64:1.3 256:1.2" '
function val(key,    i, kv) {
    for (i = 3; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == key) return kv[2]
    }
    return ""
}
function max(a, b) { return a == "" || b + 0 > a + 0 ? b : a }
BEGIN { n = split(targets, tl, " "); for (i = 1; i <= n; i++) { split(tl[i], p, ":"); target[p[1]] = p[2] } }
$1 == "C" && $2 == "flops" { fpe = val("per_example") }
$1 == "C" && $2 == "sgemm" && val("peak_gflops") != "" { runpeak = val("peak_gflops") }
$1 == "C" && $2 == "result" {
    # The best round per batch size, with the SGEMM peak measured in that same run.
    b = val("batch"); seen[b] = 1; r = val("best_epoch_examples_per_second")
    if (cav[b] == "" || r + 0 > cav[b] + 0) { cav[b] = r; peak[b] = runpeak }
}
$1 == "C" && $2 == "hotpath" { b = val("batch"); cavcpu[b] = max(cavcpu[b], val("examples_per_cpu_second")) }
$1 == "C" && $2 == "allocs" { b = val("batch"); if (val("per_batch_free") != "yes") allocbad[b] = val("per_epoch_after_first"); allocs[b] = val("per_epoch_after_first") }
$1 == "C" && $2 == "memory" { rss = max(rss, val("peak_rss_mib")); limit = val("limit_mib"); dataset = val("dataset_mib") }
$1 == "C" && $2 == "train" { b = val("batch"); acc[b] = val("dev_accuracy_epoch2") }
$1 != "C" && $3 == "speed" {
    b = val("batch")
    if ($1 == "T") { tdef[b] = max(tdef[b], val("best_epoch_examples_per_second")); tdefcpu[b] = max(tdefcpu[b], val("best_epoch_examples_per_cpu_second")) }
    else { tmal[b] = max(tmal[b], val("best_epoch_examples_per_second")); tmalcpu[b] = max(tmalcpu[b], val("best_epoch_examples_per_cpu_second")) }
}
$1 == "T" && $3 == "accuracy" && val("batch") == 64 { tacc = val("dev_accuracy_epoch2") }
END {
    printf "== training throughput, 784-256-128-10 relu, adam, Fashion-MNIST (50,000 train), one thread\n"
    printf "   FLOPs per example (GEMM, forward + backward): %s; caviar: best of the rounds, its GFLOP/s\n", fpe
    printf "   against the SGEMM peak measured in that same run (GFLOP/s shown after the fraction)\n\n"
    printf "%6s %12s %12s %7s %7s %8s %12s %11s  %s\n", "batch", "caviar ex/s", "PyTorch ex/s", "ratio", "target", "GFLOP/s", "of peak", "peak RSS", "verdict"
    for (b in seen) order[++nb] = b + 0
    for (i = 1; i <= nb; i++) for (j = i + 1; j <= nb; j++) if (order[j] < order[i]) { t = order[i]; order[i] = order[j]; order[j] = t }
    for (i = 1; i <= nb; i++) {
        b = order[i]
        ref = max(tdef[b], tmal[b])
        ratio = ref > 0 ? cav[b] / ref : 0
        gf = cav[b] * fpe * 1e-9
        tg = (b in target) ? target[b] : ""
        verdict = tg == "" ? "-" : (ratio >= tg + 0 ? "PASS" : "MISS")
        tgs = tg == "" ? "-" : tg "x"
        frac = peak[b] + 0 > 0 ? gf / peak[b] : 0
        printf "%6d %12.0f %12.0f %7.2f %7s %8.1f %6.3f/%5.1f %7.1f MiB  %s\n", b, cav[b], ref, ratio, tgs, gf, frac, peak[b], rss, verdict
    }
    printf "\n   PyTorch ex/s is the faster of: as installed / glibc malloc tuned (best epoch, wall clock):\n"
    for (i = 1; i <= nb; i++) { b = order[i]; printf "     batch %d: %.0f / %.0f\n", b, tdef[b], tmal[b] }
    printf "   Cross-check on thread CPU time (immune to other processes): caviar hot path / best PyTorch:\n"
    for (i = 1; i <= nb; i++) { b = order[i]; r = max(tdefcpu[b], tmalcpu[b]); q = r + 0 > 0 ? cavcpu[b] / r : 0; printf "     batch %d: %.0f / %.0f = %.2f\n", b, cavcpu[b], r, q }
    printf "   Dev accuracy after 2 epochs at batch 64: caviar %s, PyTorch %s (reference figure: 0.877)\n\n", acc[64], tacc
    mv = rss + 0 < limit + 0 ? "PASS" : "MISS"
    printf "%s memory: peak RSS %.1f MiB < dataset %.1f MiB + 64 MiB = %.1f MiB\n", mv, rss, dataset, limit
    bad = 0
    for (i = 1; i <= nb; i++) { b = order[i]; if (b in allocbad) bad = 1 }
    printf "%s allocations: per epoch after the first, by batch size:", bad ? "MISS" : "PASS"
    for (i = 1; i <= nb; i++) { b = order[i]; printf " %d: %s", b, allocs[b] }
    printf " (must not grow with the number of mini-batches)\n"
}'
exit 0
