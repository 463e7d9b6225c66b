#!/usr/bin/env bash
# nbdkit's CPU per GiB for s3-object builds side by side, alternating:
# for each build in each repetition, a fresh nbdkit (its default
# threads) takes a `nbdcopy --flush` write of SIZE_MIB, and another
# fresh nbdkit serves a `nbdcopy ... null:` read of it.  Prints MiB/s,
# nbdkit's CPU seconds per GiB (utime+stime, /proc/PID/stat) and its
# minor page faults; with PSTAT=yes also perf stat's context switches
# (needs perf).  The order of the builds reverses every repetition, so
# that a load that changes during the run weighs on all of them alike.
#
# Usage: bench/s3-object-cpu.sh [ceph|s3rver] REPS NAME=BUILDDIR ...
#   e.g. bench/s3-object-cpu.sh s3rver 3 main=/tmp/main-build new=$PWD
# Knobs: SIZE_MIB (1024), PSTAT=yes.  Needs libnbd-bin (nbdcopy,
# nbdinfo) and the server's packages (tests/s3_server.py).  About 30 s
# per build and repetition at 1 GiB on s3rver, more on Ceph.
# Prints figures; never passes or fails on them.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
server="${1:-s3rver}"
if [ -z "${S3_ENDPOINT:-}" ]; then
    exec "$here/s3-run-server.py" "$server" -- "$0" "$@"
fi
. "$here/s3-functions.sh"
reps="$2"; shift 2
[ $# -ge 1 ] || { echo "usage: $0 [ceph|s3rver] REPS NAME=BUILDDIR ..." >&2; exit 1; }
for v in "$@"; do
    [ -x "${v#*=}/nbdkit" ] || { echo "$v: no ./nbdkit there" >&2; exit 1; }
done

MiB=$((1024 * 1024))
size_mib="${SIZE_MIB:-1024}"
bytes=$((size_mib * MiB))
d="$(mktemp -d /tmp/shardkit-bench-XXXXXX)"
pid=
cleanup() { [ -n "$pid" ] && s3_stop "$pid"; rm -rf "$d"; }
trap cleanup EXIT
head -c "$bytes" /dev/urandom >"$d/src"

minflt() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $8 }'; }

echo "== server: $S3_SERVER at $S3_ENDPOINT, $reps repetition(s), ${size_mib} MiB"
builds=("$@")
n=${#builds[@]}
for r in $(seq 1 "$reps"); do
    echo "rep $r  load: $(cut -d' ' -f1-3 /proc/loadavg)"
    for i in $(seq 0 $((n - 1))); do
        j=$i
        [ $((r % 2)) -eq 0 ] && j=$((n - 1 - i))
        name="${builds[$j]%%=*}"
        bdir="${builds[$j]#*=}"
        for phase in write read; do
            sock="$d/$name-$r-$phase.sock"
            S3_NBDKIT_BUILDDIR="$bdir" s3_start_s3_object "$sock" "v$name$r" "${size_mib}M"
            pid=$S3_NBDKIT_PID
            stat=
            if [ "${PSTAT:-no}" = yes ]; then
                perf stat -e context-switches -o "$d/stat" -p "$pid" \
                    >/dev/null 2>&1 &
                stat=$!
                sleep 0.3
            fi
            if [ $phase = write ]; then
                sec=$(s3_nbdcopy_write "$d/src" "nbd+unix:///?socket=$sock")
            else
                sec=$(s3_nbdcopy_read "nbd+unix:///?socket=$sock" null:)
            fi
            cpu=$(s3_cpu_seconds "$pid")
            faults=$(minflt "$pid")
            cs=
            if [ -n "$stat" ]; then
                kill -INT "$stat"; wait "$stat" || true
                cs="  context switches $(awk '/context-switches/ { print $1 }' "$d/stat")"
            fi
            s3_stop "$pid"; pid=
            printf "rep %d  %-10s %-5s %7s MiB/s  CPU %5s s/GiB  minor faults %s%s\n" \
                "$r" "$name" "$phase" "$(mibs "$sec")" "$(per_gib "$cpu")" \
                "$faults" "$cs"
        done
        delete_prefix "bench/v$name$r." ||
            echo "note: could not delete volume v$name$r (carrying on)"
    done
done
echo "done, load: $(cut -d' ' -f1-3 /proc/loadavg)"
