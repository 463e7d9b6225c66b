#!/usr/bin/env bash
# shardkit benchmark: sharded-file over several directories (a mirror,
# or an erasure-coded set) against one directory, in one run, with the
# same clients, all the directories on the same file system:
#
#   - sequential write of SIZE_MIB with nbdcopy (including the flush)
#   - sequential read with nbdcopy (to null:)
#   - nbdkit's CPU seconds per GiB written and read (utime + stime of the
#     server process, /proc/PID/stat)
#   - degraded read: the same read with one location down (EC: M of
#     them), through the LD_PRELOAD fault injector of the tests (every
#     I/O on those directories fails with EIO), against a healthy read
#     through the same injector (it costs something per call, so the
#     pair is measured alike)
#
# Sets: single, mirror x2, mirror x3, and ec:2+1, ec:4+2 when the plugin
# takes redundancy=ec.  Prints medians and ratios to the single location;
# the targets are issue 15's.  Not a test: it never passes or fails.
# The cost of the coding itself is bench/ec-cost (make -C bench ec-cost).
#
#   bench/redundancy.sh [WORKDIR]
#
# Environment: NBDKIT, SIZE_MIB (512), REPS (3), CHUNK_SIZE (4M),
# REQUEST_SIZE (nbdcopy --request-size=; default nbdcopy's own, 256K:
# an EC set rewrites a whole chunk per write smaller than a chunk),
# DROP_CACHES=1 (as root: read from a cold page cache), SETS (a subset
# of "single mirror2 mirror3 ec21 ec42").
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
. "$here/find-nbdkit.sh"
SIZE_MIB="${SIZE_MIB:-512}"
REPS="${REPS:-3}"
CHUNK_SIZE="${CHUNK_SIZE:-4M}"
copy_opts=(${REQUEST_SIZE:+--request-size=$REQUEST_SIZE})
command -v nbdcopy >/dev/null || { echo "nbdcopy is needed (apt-get install libnbd-bin)"; exit 1; }

top="$(cd "$here/.." && pwd)"
shim="$top/tests/.libs/fault-inject.so"
if [ ! -e "$shim" ]; then
    make -C "$top/tests" fault-inject.la >/dev/null 2>&1 || true
fi
[ -e "$shim" ] || { echo "tests/.libs/fault-inject.so is needed (make -C tests fault-inject.la)"; exit 1; }

keep_work="${1:-}"
work="${1:-$(mktemp -d /var/tmp/shardkit-bench.XXXXXX)}"
mkdir -p "$work"
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    if [ -z "$keep_work" ]; then rm -rf "$work"; fi
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

src="$work/src.img"
faults="$work/faults"
mkdir -p "$faults"
echo "work dir: $work"
echo "nbdkit:   $NBDKIT ($("$NBDKIT" --version 2>/dev/null | head -1))"
echo "machine:  $(nproc) CPUs, $(uname -r), $(df -T "$work" | awk 'NR==2 {print $2}') file system"
echo "size:     $SIZE_MIB MiB, chunk size $CHUNK_SIZE, median of $REPS, nbdcopy request size ${REQUEST_SIZE:-its default}"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the start"
echo
head -c $((SIZE_MIB * 1048576)) /dev/urandom > "$src"

ec_supported() {
    mkdir -p "$work/probe0" "$work/probe1" "$work/probe2"
    "$NBDKIT" -f -U "$work/probe.sock" sharded-file dir="$work/probe0" \
        dir="$work/probe1" dir="$work/probe2" redundancy=ec:2+1 \
        export=p size=1M --run true >/dev/null 2>&1
}

# The sets: NAME LOCATIONS DOWN EXTRA-ARGS...
declare -a sets
sets=("single 1 0" "mirror2 2 1 redundancy=mirror" "mirror3 3 1 redundancy=mirror")
if ec_supported; then
    sets+=("ec21 3 1 redundancy=ec:2+1" "ec42 6 2 redundancy=ec:4+2")
else
    echo "(this sharded-file does not take redundancy=ec: EC sets skipped)"
fi
if [ -n "${SETS:-}" ]; then
    keep=()
    for s in "${sets[@]}"; do
        case " $SETS " in *" ${s%% *} "*) keep+=("$s");; esac
    done
    sets=("${keep[@]}")
fi

start() {   # start [ENV=...] ARGS...: nbdkit on $work/s.sock
    rm -f "$work/s.sock"
    env "$@" 2>>"$work/nbdkit.log" &
    pid=$!
    for _ in $(seq 400); do
        [ -S "$work/s.sock" ] && return 0
        sleep 0.05
    done
    echo "nbdkit did not start: $*"; tail -5 "$work/nbdkit.log"; exit 1
}
stop() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    pid=
}
uri="nbd+unix:///v?socket=$work/s.sock"
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }      # ticks
hz=$(getconf CLK_TCK)
now() { date +%s.%N; }
drop_caches() {
    sync
    if [ -n "${DROP_CACHES:-}" ] && [ -w /proc/sys/vm/drop_caches ]; then
        echo 3 > /proc/sys/vm/drop_caches
    fi
}
median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }
# timed CMD...: prints "MiB/s CPU-s/GiB" for moving SIZE_MIB through nbdkit
timed() {
    local t0 t1 c0 c1
    c0=$(cpu); t0=$(now)
    "$@" >/dev/null
    t1=$(now); c1=$(cpu)
    awk -v a="$t0" -v b="$t1" -v m="$SIZE_MIB" -v c="$((c1 - c0))" -v hz="$hz" \
        'BEGIN { printf "%.1f %.3f", m / (b - a), (c / hz) / (m / 1024) }'
}

declare -A res
run_set() {     # NAME NLOC DOWN EXTRA...
    local name="$1" nloc="$2" down="$3"; shift 3
    local args=() i d
    rm -rf "$work/loc"*
    for ((i = 0; i < nloc; i++)); do
        mkdir -p "$work/loc$i"
        args+=("dir=$work/loc$i")
    done
    rm -f "$faults/fail-dir"
    start "$NBDKIT" -f -U "$work/s.sock" sharded-file "${args[@]}" "$@" \
        export=v size="${SIZE_MIB}M" chunk-size="$CHUNK_SIZE"
    read -r w wc <<<"$(timed nbdcopy "${copy_opts[@]}" --flush "$src" "$uri")"
    drop_caches
    read -r r rc <<<"$(timed nbdcopy "${copy_opts[@]}" "$uri" null:)"
    stop
    res[$name.w]+="$w "; res[$name.wc]+="$wc "
    res[$name.r]+="$r "; res[$name.rc]+="$rc "
    [ "$down" -gt 0 ] || return 0
    # Healthy and degraded reads, both through the fault injector.
    start LD_PRELOAD="$shim" SHARDKIT_FAULT_DIR="$faults" \
        "$NBDKIT" -f -U "$work/s.sock" sharded-file "${args[@]}" "$@" export=v
    drop_caches
    read -r h _ <<<"$(timed nbdcopy "${copy_opts[@]}" "$uri" null:)"
    : > "$faults/fail-dir"
    for ((i = 0; i < down; i++)); do echo "$work/loc$i" >> "$faults/fail-dir"; done
    drop_caches
    read -r d dc <<<"$(timed nbdcopy "${copy_opts[@]}" "$uri" null:)"
    if ! cmp -s <(nbdcopy "$uri" - ) "$src"; then
        echo "$name: degraded read returned wrong data" >&2; exit 1
    fi
    rm -f "$faults/fail-dir"
    stop
    res[$name.h]+="$h "; res[$name.d]+="$d "; res[$name.dc]+="$dc "
}

for ((rep = 1; rep <= REPS; rep++)); do
    order=("${sets[@]}")
    # Alternate the order so that no set always goes first.
    if ((rep % 2 == 0)); then
        for ((i = 0, j = ${#order[@]} - 1; i < j; i++, j--)); do
            t="${order[i]}"; order[i]="${order[j]}"; order[j]="$t"
        done
    fi
    for s in "${order[@]}"; do
        # shellcheck disable=SC2086
        run_set $s
    done
    echo "round $rep done" >&2
done

echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end"
printf "\n%-8s %9s %7s %9s %9s %7s %9s %9s %9s %7s\n" set "write" ratio "cpu/GiB" \
       "read" ratio "cpu/GiB" healthy* degraded* ratio
sw=$(median <<<"${res[single.w]}")
sr=$(median <<<"${res[single.r]}")
for s in "${sets[@]}"; do
    n="${s%% *}"
    w=$(median <<<"${res[$n.w]}"); wc=$(median <<<"${res[$n.wc]}")
    r=$(median <<<"${res[$n.r]}"); rc=$(median <<<"${res[$n.rc]}")
    h=$(median <<<"${res[$n.h]:-}"); d=$(median <<<"${res[$n.d]:-}")
    printf "%-8s %9s %7.3f %9s %9s %7.3f %9s %9s %9s %7s\n" "$n" \
        "$w" "$(awk -v a="$w" -v b="$sw" 'BEGIN { print a / b }')" "$wc" \
        "$r" "$(awk -v a="$r" -v b="$sr" 'BEGIN { print a / b }')" "$rc" \
        "${h:--}" "${d:--}" \
        "$( [ -n "$h" ] && awk -v a="$d" -v b="$h" 'BEGIN { printf "%.3f", a / b }' || echo -)"
done
echo
echo "MiB/s; cpu/GiB: nbdkit CPU seconds per GiB moved; ratios to the single"
echo "location; * through the LD_PRELOAD fault injector, degraded = 1 location"
echo "down (EC: M).  Targets (issue 15): mirror sync write >= 0.8, EC 4+2"
echo "read >= 0.8, degraded EC read >= 0.5 x healthy."
