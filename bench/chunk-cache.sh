#!/usr/bin/env bash
# shardkit benchmark: the chunk-cache filter against nbdkit's own cache
# filter (cache=writeback cache-on-read=true), both in front of a slow
# plugin: nbdkit's memory plugin behind nbdkit's delay filter, 10 ms per
# read/write/zero/trim/extents request (a stand-in for an object store).
#
#   1. write SIZE MiB in 1 MiB writes, then flush: time until the flush
#      has completed (everything is in the plugin)
#      (chunk-cache also with durability=local and a cache-dir)
#   2. re-read the same SIZE MiB, now cached: throughput, compared with
#      nbdkit's memory plugin alone (no delay, no cache)
#
# Prints each figure and the ratios.  Not a test: it never passes or
# fails.  Usage (from a build directory):
#
#   bench/chunk-cache.sh
#
# Environment: NBDKIT (default ./nbdkit of the build tree), SIZE_MIB (256),
# DELAY (10ms), REPS (re-read rounds, best reported; 5),
# EXTRA (more chunk-cache parameters, e.g. "writeback-threads=16").
# Takes about a minute, most of it nbdkit's cache filter flushing.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
. "$here/find-nbdkit.sh"
SIZE_MIB="${SIZE_MIB:-256}"
DELAY="${DELAY:-10ms}"
REPS="${REPS:-5}"
EXTRA="${EXTRA:-}"
python3 -c 'import nbd' 2>/dev/null || {
    echo "python3 with the nbd module is needed (apt-get install python3-libnbd)"
    exit 1
}

work="$(mktemp -d /var/tmp/shardkit-bench.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export TMPDIR="$work"           # both caches keep their temp files here

disk=$((SIZE_MIB + 64))M
slow=(--filter=delay memory "$disk" delay-read="$DELAY" delay-write="$DELAY"
      delay-zero="$DELAY" delay-trim="$DELAY" delay-extents="$DELAY"
      delay-cache="$DELAY")

start() {   # start NAME ARGS...: nbdkit with ARGS on $work/NAME.sock
    local name="$1"; shift
    "$NBDKIT" -f -U "$work/$name.sock" "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do [ -S "$work/$name.sock" ] && return 0; sleep 0.05; done
    echo "nbdkit did not start:"; cat "$work/$name.log"; exit 1
}

# The client: writes then flushes, or reads, with 1 MiB requests, 8 in
# flight.
cat > "$work/client.py" <<'PYEOF'
import sys, time, nbd
sock, mode, size_mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
MiB = 1 << 20
h = nbd.NBD()
h.connect_unix(sock)
buf = nbd.Buffer(MiB)
def run(cmd):
    for i in range(size_mib):
        while h.aio_in_flight() >= 8:
            h.poll(-1)
        cmd(i)
    while h.aio_in_flight() > 0:
        h.poll(-1)
if mode == "write":
    data = nbd.Buffer.from_bytearray(bytearray(b"\xa5" * MiB))
    t0 = time.monotonic()
    run(lambda i: h.aio_pwrite(data, i * MiB))
    t1 = time.monotonic()
    h.flush()
    t2 = time.monotonic()
    print("%.3f %.3f" % (t1 - t0, t2 - t0))
else:
    t0 = time.monotonic()
    run(lambda i: h.aio_pread(buf, i * MiB))
    print("%.1f" % (size_mib / (time.monotonic() - t0)))
h.shutdown()
PYEOF
client() { python3 "$work/client.py" "$work/$1.sock" "$2" "$SIZE_MIB"; }
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }

echo "nbdkit: $NBDKIT ($("$NBDKIT" --version 2>/dev/null | head -1))"
echo "plugin: memory behind the delay filter, $DELAY per request;" \
     "$SIZE_MIB MiB in 1 MiB requests, 8 in flight"
echo

mkdir -p "$work/cache-dir"
start cc --filter=chunk-cache "${slow[@]}" $EXTRA
start cl --filter=chunk-cache "${slow[@]}" cache-dir="$work/cache-dir" durability=local $EXTRA
start nc --filter=cache "${slow[@]}" cache=writeback cache-on-read=true
start mem memory "$disk"

# 1. Write, then flush: one server after the other.
read -r cc_w cc_f <<<"$(client cc write)"
echo "chunk-cache:          writes acked in ${cc_w}s, flush completed at ${cc_f}s"
# durability=local: the flush fsyncs the cache directory; write-back goes
# on in the background.
read -r cl_w cl_f <<<"$(client cl write)"
echo "chunk-cache (local):  writes acked in ${cl_w}s, flush completed at ${cl_f}s (durability=local, cache-dir)"
read -r nc_w nc_f <<<"$(client nc write)"
echo "nbdkit cache filter:  writes acked in ${nc_w}s, flush completed at ${nc_f}s"
read -r m_w m_f <<<"$(client mem write)"
echo "memory plugin alone:  writes acked in ${m_w}s, flush completed at ${m_f}s"

# 2. Re-read what is now cached: the rounds alternate between the servers
# so that a change of load on the machine hits all of them alike; best of
# REPS rounds.
cc_r=0 nc_r=0 m_r=0
for _ in $(seq "$REPS"); do
    cc_r=$(best "$cc_r" "$(client cc read)")
    nc_r=$(best "$nc_r" "$(client nc read)")
    m_r=$(best "$m_r" "$(client mem read)")
done
echo
echo "cached re-read (best of $REPS): chunk-cache ${cc_r} MiB/s," \
     "nbdkit cache ${nc_r} MiB/s, memory plugin ${m_r} MiB/s"
echo
awk -v a="$nc_f" -v b="$cc_f" 'BEGIN { printf "time to completed flush: chunk-cache is %.1fx faster than nbdkit cache (target >= 8x)\n", a / b }'
awk -v a="$cc_r" -v b="$m_r" 'BEGIN { printf "cached re-read: chunk-cache %.2fx the memory plugin (target >= 0.8x)\n", a / b }'
awk -v a="$nc_r" -v b="$m_r" 'BEGIN { printf "cached re-read: nbdkit cache %.2fx the memory plugin\n", a / b }'
