#!/usr/bin/env bash
# shardkit benchmark: small random I/O on cached blocks.
#
# fio (ioengine=nbd, 4 KiB, iodepth 16, one job) over a working set of
# SIZE_MIB that is already cached, side by side in one run against:
#
#   chunk-cache   --filter=chunk-cache over nbdkit's memory plugin, with a
#                 cache-dir on the same disk as file.img
#   nbd-cache     nbdkit's own cache filter (cache=writeback) over memory,
#                 its temp file on the same disk
#   memory        nbdkit's memory plugin alone
#   file          nbdkit's file plugin on file.img (the cache's own medium)
#
# For random writes, random reads and a 70/30 read/write mix it prints
# IOPS and the 99th percentile completion latency of each, and the
# ratios of chunk-cache to the file plugin and to nbdkit's cache filter.
# Rounds alternate the order of the targets; the median is reported.
# Not a test: it never passes or fails.  Usage (from a build directory):
#
#   bench/chunk-cache-random.sh
#
# Environment: NBDKIT (default ./nbdkit of the build tree), SIZE_MIB (256),
# RUNTIME (seconds per fio run, 10), REPS (3), EXTRA (more chunk-cache
# parameters), B_NBDKIT (a second build's ./nbdkit: adds a column
# "chunk-cache-B" for an A/B comparison of two builds).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
. "$here/find-nbdkit.sh"
SIZE_MIB="${SIZE_MIB:-256}"
RUNTIME="${RUNTIME:-10}"
REPS="${REPS:-3}"
EXTRA="${EXTRA:-}"
B_NBDKIT="${B_NBDKIT:-}"
for t in fio nbdcopy; do
    command -v "$t" >/dev/null || { echo "$t is needed"; exit 1; }
done

work="$(mktemp -d /var/tmp/shardkit-bench.XXXXXX)"
pids=()
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
export TMPDIR="$work"           # nbdkit's cache filter keeps its file here

disk=$((SIZE_MIB * 2))M
src="$work/src.img"
head -c "${SIZE_MIB}M" /dev/urandom > "$src"

start() {   # start NAME NBDKIT ARGS...: serve on $work/NAME.sock
    local name="$1" bin="$2"; shift 2
    rm -f "$work/$name.sock"
    "$bin" -f -U "$work/$name.sock" "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do
        [ -S "$work/$name.sock" ] && return 0
        sleep 0.05
    done
    echo "nbdkit $* did not start:"; cat "$work/$name.log"; exit 1
}
uri() { echo "nbd+unix:///?socket=$work/$1.sock"; }

targets="chunk-cache nbd-cache memory file"
[ -n "$B_NBDKIT" ] && targets="chunk-cache chunk-cache-B $targets"
targets="$(tr ' ' '\n' <<<"$targets" | awk '!seen[$0]++' | tr '\n' ' ')"

# Fresh targets, the working set written once so that every block of it
# is cached (and, for chunk-cache, written back: clean).
fresh() {
    stop_all
    rm -rf "$work/cc" "$work/ccb" "$work/file.img" "$work"/*.sock
    mkdir -p "$work/cc" "$work/ccb"
    truncate -s "$disk" "$work/file.img"
    start chunk-cache "$NBDKIT" --filter=chunk-cache memory "$disk" \
        cache-dir="$work/cc" $EXTRA
    [ -n "$B_NBDKIT" ] &&
        start chunk-cache-B "$B_NBDKIT" --filter=chunk-cache memory "$disk" \
            cache-dir="$work/ccb" $EXTRA
    start nbd-cache nbdkit --filter=cache memory "$disk" cache=writeback
    start memory nbdkit memory "$disk"
    start file nbdkit file "$work/file.img"
    for t in $targets; do nbdcopy --flush "$src" "$(uri "$t")"; done
}

# fio_run TARGET RW -> "IOPS P99_US" (p99 of writes if any, else reads)
fio_run() {
    local out
    out=$(fio --name=bench --ioengine=nbd --uri="$(uri "$1")" --rw="$2" \
              --rwmixread=70 --bs=4k --iodepth=16 --runtime="$RUNTIME" \
              --time_based --ramp_time=2 --size="${SIZE_MIB}M" \
              --randrepeat=0 --output-format=json 2>/dev/null)
    python3 -c 'import json, sys
s = sys.stdin.read()          # fio may print a line before the JSON
j = json.loads(s[s.index("{"):])["jobs"][0]
if j["error"]:
    sys.exit("fio: error %d" % j["error"])
side = j["write"] if j["write"]["iops"] > 0 else j["read"]
p99 = side["clat_ns"]["percentile"]["99.000000"] / 1000
print("%.0f %.0f" % (j["read"]["iops"] + j["write"]["iops"], p99))' <<<"$out"
}

declare -A iops p99
for ((r = 1; r <= REPS; r++)); do
    fresh
    order="$targets"
    ((r % 2)) || order="$(tr ' ' '\n' <<<"$targets" | tac | tr '\n' ' ')"
    for rw in randwrite randread randrw; do
        for t in $order; do
            read -r i l < <(fio_run "$t" "$rw")
            iops[$t.$rw]+="$i "; p99[$t.$rw]+="$l "
        done
    done
    echo "round $r done" >&2
done
stop_all

median() { tr ' ' '\n' | grep -v '^$' | sort -g |
           awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "working set $SIZE_MIB MiB, 4 KiB, iodepth 16, ${RUNTIME}s per run," \
     "median of $REPS rounds"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end"
for rw in randwrite randread randrw; do
    echo
    printf "%-10s %-14s %10s %10s\n" "$rw" "target" "IOPS" "p99 (us)"
    for t in $targets; do
        printf "%-10s %-14s %10s %10s\n" "" "$t" \
            "$(median <<<"${iops[$t.$rw]}")" "$(median <<<"${p99[$t.$rw]}")"
    done
    cc=$(median <<<"${iops[chunk-cache.$rw]}")
    ccl=$(median <<<"${p99[chunk-cache.$rw]}")
    for t in file nbd-cache; do
        printf "%-10s chunk-cache / %-9s IOPS %.2fx, p99 %.2fx\n" "" "$t" \
            "$(awk -v a="$cc" -v b="$(median <<<"${iops[$t.$rw]}")" \
                   'BEGIN { print a / b }')" \
            "$(awk -v a="$ccl" -v b="$(median <<<"${p99[$t.$rw]}")" \
                   'BEGIN { print a / b }')"
    done
done
