#!/usr/bin/env bash
# shardkit benchmark: the sharded-file plugin against nbdkit's own file
# plugin, in one run, on the same machine, with the same clients:
#
#   - sequential write of 1 GiB with nbdcopy (including the final flush)
#   - sequential read of 1 GiB with nbdcopy (to null:)
#   - 4k random read and random write IOPS at iodepth 16 (fio, ioengine=nbd)
#
# Prints each figure and the ratio sharded-file/file.  Not a test: it never
# passes or fails.  Usage (from a build directory, or with shardkit
# installed):
#
#   bench/sharded-file.sh [WORKDIR]
#
# Environment: NBDKIT (default: ./nbdkit of the build tree if present,
# else nbdkit), SIZE_MIB (1024), RUNTIME (seconds per fio run, 15),
# REPS (repetitions of each measurement, median reported; 3),
# CHUNK_SIZE (sharded-file chunk-size=, default the plugin's default),
# DROP_CACHES=1 (as root: drop the page cache before each read test).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
. "$here/find-nbdkit.sh"
SIZE_MIB="${SIZE_MIB:-1024}"
RUNTIME="${RUNTIME:-15}"
REPS="${REPS:-3}"
for t in nbdcopy fio; do
    command -v "$t" >/dev/null || { echo "$t is needed (apt-get install ${t/nbdcopy/libnbd-bin})"; exit 1; }
done

keep_work="${1:-}"
work="${1:-$(mktemp -d /var/tmp/shardkit-bench.XXXXXX)}"
mkdir -p "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -z "$keep_work" ]; then rm -rf "$work"; fi
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

src="$work/src.img"
echo "work dir: $work"
echo "nbdkit:   $NBDKIT ($("$NBDKIT" --version 2>/dev/null | head -1))"
echo "machine:  $(nproc) CPUs, $(uname -r), $(df -T "$work" | awk 'NR==2 {print $2}') file system"
echo "size:     $SIZE_MIB MiB, fio runtime ${RUNTIME}s, median of $REPS"
# Other work on the machine moves these figures a lot: say how busy it was.
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the start"
echo

# Random, incompressible source data, once, kept in the page cache.
if [ ! -s "$src" ] || [ "$(stat -c %s "$src")" -ne $((SIZE_MIB * 1048576)) ]; then
    head -c $((SIZE_MIB * 1048576)) /dev/urandom > "$src"
fi
cat "$src" > /dev/null

# start NAME ARGS...: start nbdkit on $work/NAME.sock, wait until it serves.
start() {
    local name="$1"; shift
    rm -f "$work/$name.sock"
    "$NBDKIT" -f -U "$work/$name.sock" "$@" &
    pids+=($!)
    for _ in $(seq 200); do
        [ -S "$work/$name.sock" ] && return 0
        sleep 0.05
    done
    echo "nbdkit $* did not start"; exit 1
}
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
uri() { echo "nbd+unix:///?socket=$work/$1.sock"; }

# Fresh, empty targets of SIZE_MIB.
fresh() {
    stop_all
    rm -rf "$work/sf" "$work/file.img"
    mkdir -p "$work/sf"
    truncate -s "${SIZE_MIB}M" "$work/file.img"
    start sf sharded-file dir="$work/sf" export=bench size="${SIZE_MIB}M" \
        ${CHUNK_SIZE:+chunk-size=$CHUNK_SIZE}
    start file file "$work/file.img"
}
drop_caches() {
    sync
    if [ -n "${DROP_CACHES:-}" ] && [ -w /proc/sys/vm/drop_caches ]; then
        echo 3 > /proc/sys/vm/drop_caches
        cat "$src" > /dev/null
    fi
}

now() { date +%s.%N; }
# mib_per_s SECONDS
mib_per_s() { awk -v s="$1" -v m="$SIZE_MIB" 'BEGIN { printf "%.1f", m / s }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

seq_write() {   # -> MiB/s
    local t0 t1
    sync
    t0=$(now)
    nbdcopy --flush "$src" "$(uri "$1")"
    t1=$(now)
    mib_per_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
}
seq_read() {
    local t0 t1
    drop_caches
    t0=$(now)
    nbdcopy "$(uri "$1")" null:
    t1=$(now)
    mib_per_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
}
fio_iops() {    # NAME randread|randwrite -> IOPS
    local out
    out=$(fio --name=bench --ioengine=nbd --uri="$(uri "$1")" --rw="$2" \
              --bs=4k --iodepth=16 --runtime="$RUNTIME" --time_based \
              --ramp_time=2 --size="${SIZE_MIB}M" --randrepeat=0 \
              --output-format=json 2>/dev/null)
    python3 -c 'import json, sys
s = sys.stdin.read()          # fio prints a line before the JSON
j = json.loads(s[s.index("{"):])["jobs"][0]
print("%.0f" % (j["read"]["iops"] + j["write"]["iops"]))' <<<"$out"
}

declare -A res
for ((r = 1; r <= REPS; r++)); do
    # Alternate the order so that neither plugin always goes first.
    if ((r % 2)); then order="sf file"; else order="file sf"; fi
    fresh
    for p in $order; do res[$p.seqw]+="$(seq_write "$p") "; done
    for p in $order; do res[$p.seqr]+="$(seq_read "$p") "; done
    for p in $order; do res[$p.randr]+="$(fio_iops "$p" randread) "; done
    for p in $order; do res[$p.randw]+="$(fio_iops "$p" randwrite) "; done
    echo "run $r: sf ${res[sf.seqw]}| ${res[sf.seqr]}| ${res[sf.randr]}| ${res[sf.randw]}" \
         " file ${res[file.seqw]}| ${res[file.seqr]}| ${res[file.randr]}| ${res[file.randw]}" >&2
done
stop_all

echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end"
printf "\n%-34s %14s %14s %8s %8s\n" "measurement" "sharded-file" "file" "ratio" "target"
for m in seqw:"sequential write (MiB/s)":0.95 seqr:"sequential read (MiB/s)":0.95 \
         randr:"4k random read, QD16 (IOPS)":0.90 randw:"4k random write, QD16 (IOPS)":0.90; do
    key="${m%%:*}"; rest="${m#*:}"; label="${rest%:*}"; target="${rest##*:}"
    a=$(median <<<"${res[sf.$key]}")
    b=$(median <<<"${res[file.$key]}")
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }')
    printf "%-34s %14s %14s %8s %8s\n" "$label" "$a" "$b" "$ratio" ">= $target"
done
