#!/usr/bin/env bash
# shardkit benchmark: how much chunk-cache uploads for a hot random-write
# workload.  chunk-cache (cache-dir, durability=local) over s3-object on a
# local S3 server; fio writes 4 KiB at random over a working set of
# SIZE_MIB (already cached) at iodepth 16 for SECONDS; then the bytes the
# cache wrote back to s3-object (its stats-file: blocks written back x
# block size) are compared with the bytes the client wrote.  No flush is
# sent during the run, so every upload is the write-back's own choice.
#
# Usage: bench/chunk-cache-writeback-traffic.sh [s3rver|ceph]  (s3rver)
# Environment: SIZE_MIB (256), SECONDS_RUN (60), EXTRA (more chunk-cache
# parameters, e.g. "writeback-max-age=10"), B_BUILDDIR (another build
# directory, e.g. one of main before writeback-max-age=: run as variant
# B beside this one).  Run from a build directory (uses ./nbdkit).
# Prints figures and ratios; never passes or fails on them.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
server="${1:-s3rver}"
if [ -z "${S3_ENDPOINT:-}" ]; then
    exec "$here/s3-run-server.py" "$server" -- "$0" "$@"
fi
. "$here/s3-functions.sh"
export PATH="/usr/bin:$PATH"
command -v fio >/dev/null || { echo "SKIP: fio missing"; exit 77; }

SIZE_MIB="${SIZE_MIB:-256}"
SECONDS_RUN="${SECONDS_RUN:-60}"
EXTRA="${EXTRA:-}"
work="$(mktemp -d /var/tmp/shardkit-bench.XXXXXX)"
pid=
cleanup() { [ -n "$pid" ] && s3_stop "$pid"; rm -rf "$work"; }
trap cleanup EXIT
head -c "${SIZE_MIB}M" /dev/urandom > "$work/src.img"

stat_of() {   # stat_of FILE KEY
    awk -F= -v k="$2" '$1 == k { print $2; exit }' "$1"
}

run() {   # run NAME BUILDDIR
    local name="$1" builddir="$2" sock="$work/$1.sock" st="$work/$1.stats"
    local wb0 wb1 bs out client
    mkdir -p "$work/$name.cache"
    S3_NBDKIT_BUILDDIR="$builddir" S3_OBJECT_NBDKIT_OPTS=--filter=chunk-cache \
        s3_start_s3_object "$sock" "hot-$name" \
        "$((SIZE_MIB * 2))M" cache-dir="$work/$name.cache" \
        durability=local stats-file="$st" stats-interval=0.2 $EXTRA ||
        { cat "$sock.log"; exit 1; }
    pid=$S3_NBDKIT_PID
    nbdcopy --flush "$work/src.img" "nbd+unix:///?socket=$sock"
    sleep 3                      # the first write-back of the fill is over
    wb0=$(stat_of "$st" written-back)
    out=$(fio --name=hot --ioengine=nbd --uri="nbd+unix:///?socket=$sock" \
              --rw=randwrite --bs=4k --iodepth=16 --runtime="$SECONDS_RUN" \
              --time_based --size="${SIZE_MIB}M" --randrepeat=0 \
              --output-format=json 2>/dev/null)
    sleep 0.5
    wb1=$(stat_of "$st" written-back)
    bs=$(stat_of "$st" block-size)
    client=$(python3 -c 'import json, sys
s = sys.stdin.read()
j = json.loads(s[s.index("{"):])["jobs"][0]
print(j["write"]["io_bytes"], "%.0f" % j["write"]["iops"],
      "%.0f" % (j["write"]["clat_ns"]["percentile"]["99.000000"] / 1000))' <<<"$out")
    read -r cbytes iops p99 <<<"$client"
    s3_stop "$pid"; pid=
    local up=$(( (wb1 - wb0) * bs ))
    printf "%-4s client wrote %6.0f MiB (%s IOPS, p99 %s us), uploaded %6.0f MiB" \
        "$name" "$(awk -v b="$cbytes" 'BEGIN { print b / 1048576 }')" \
        "$iops" "$p99" "$(awk -v b="$up" 'BEGIN { print b / 1048576 }')"
    printf " (%d blocks of %d KiB): uploaded / written = %s\n" \
        "$((wb1 - wb0))" "$((bs / 1024))" "$(s3_ratio "$up" "$cbytes")"
}

echo "server: $S3_SERVER; working set $SIZE_MIB MiB; fio 4k randwrite QD16" \
     "for ${SECONDS_RUN}s; chunk-cache durability=local $EXTRA"
run A "$PWD"
[ -n "${B_BUILDDIR:-}" ] && run B "$B_BUILDDIR"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end"
