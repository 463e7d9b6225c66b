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
# DELAY (10ms), REPS (re-read repetitions, best reported; 3),
# EXTRA (more chunk-cache parameters, e.g. "writeback-threads=16").
# Takes about a minute, most of it nbdkit's cache filter flushing.
set -euo pipefail

export PATH="/usr/bin:$PATH"   # python3 with the nbd module, nbdkit
here="$(cd "$(dirname "$0")" && pwd)"
if [ -z "${NBDKIT:-}" ]; then
    if [ -x ./nbdkit ]; then NBDKIT="$PWD/nbdkit"
    elif [ -x "$here/../nbdkit" ]; then NBDKIT="$here/../nbdkit"
    else NBDKIT=nbdkit; fi
fi
SIZE_MIB="${SIZE_MIB:-256}"
DELAY="${DELAY:-10ms}"
REPS="${REPS:-3}"
EXTRA="${EXTRA:-}"
python3 -c 'import nbd' 2>/dev/null || {
    echo "python3 with the nbd module is needed (apt-get install python3-libnbd)"
    exit 1
}

work="$(mktemp -d /var/tmp/shardkit-bench.XXXXXX)"
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export TMPDIR="$work"           # both caches keep their temp files here

disk=$((SIZE_MIB + 64))M
slow=(--filter=delay memory "$disk" delay-read="$DELAY" delay-write="$DELAY"
      delay-zero="$DELAY" delay-trim="$DELAY" delay-extents="$DELAY"
      delay-cache="$DELAY")

start() {   # start nbdkit with "$@" on $work/sock
    rm -f "$work/sock"
    "$NBDKIT" -f -U "$work/sock" "$@" >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do [ -S "$work/sock" ] && return 0; sleep 0.05; done
    echo "nbdkit did not start:"; cat "$work/log"; exit 1
}
stop() {
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

# The client: writes, then re-reads, with 1 MiB requests, 8 in flight.
cat > "$work/client.py" <<'EOF'
import sys, time, nbd
sock, mode, size_mib, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
MiB = 1 << 20
h = nbd.NBD()
h.connect_unix(sock)
buf = nbd.Buffer(MiB)
def run(cmd):
    # Keep up to 8 requests in flight.
    done = inflight = 0
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
    best = None
    for _ in range(reps):
        t0 = time.monotonic()
        run(lambda i: h.aio_pread(buf, i * MiB))
        t = time.monotonic() - t0
        best = t if best is None or t < best else best
    print("%.1f" % (size_mib / best))
h.shutdown()
EOF
client() { python3 "$work/client.py" "$work/sock" "$1" "$SIZE_MIB" "$REPS"; }

echo "nbdkit: $NBDKIT ($("$NBDKIT" --version 2>/dev/null | head -1))"
echo "plugin: memory behind the delay filter, $DELAY per request;" \
     "$SIZE_MIB MiB in 1 MiB requests, 8 in flight"
echo

# chunk-cache
start --filter=chunk-cache "${slow[@]}" $EXTRA
read -r cc_w cc_f <<<"$(client write)"
cc_r=$(client read)
stop
echo "chunk-cache:          writes acked in ${cc_w}s, flush completed at ${cc_f}s; cached re-read ${cc_r} MiB/s"

# chunk-cache, durability=local: the flush fsyncs the cache directory
# (write-back goes on in the background; stopping nbdkit waits for it)
mkdir -p "$work/cache-dir"
start --filter=chunk-cache "${slow[@]}" cache-dir="$work/cache-dir" durability=local $EXTRA
read -r cl_w cl_f <<<"$(client write)"
stop
echo "chunk-cache (local):  writes acked in ${cl_w}s, flush completed at ${cl_f}s (durability=local, cache-dir)"

# nbdkit's cache filter
start --filter=cache "${slow[@]}" cache=writeback cache-on-read=true
read -r nc_w nc_f <<<"$(client write)"
nc_r=$(client read)
stop
echo "nbdkit cache filter:  writes acked in ${nc_w}s, flush completed at ${nc_f}s; cached re-read ${nc_r} MiB/s"

# nbdkit's memory plugin alone: the re-read reference
start memory "$disk"
read -r m_w m_f <<<"$(client write)"
m_r=$(client read)
stop
echo "memory plugin alone:  writes acked in ${m_w}s, flush completed at ${m_f}s; re-read ${m_r} MiB/s"
echo
awk -v a="$nc_f" -v b="$cc_f" 'BEGIN { printf "time to completed flush: chunk-cache is %.1fx faster than nbdkit cache (target >= 8x)\n", a / b }'
awk -v a="$cc_r" -v b="$m_r" 'BEGIN { printf "cached re-read: chunk-cache %.2fx the memory plugin (target >= 0.8x)\n", a / b }'
awk -v a="$nc_r" -v b="$m_r" 'BEGIN { printf "cached re-read: nbdkit cache %.2fx the memory plugin\n", a / b }'
