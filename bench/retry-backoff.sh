#!/usr/bin/env bash
# shardkit benchmark: the retry-backoff filter against nbdkit's own
# retry-request filter, in one run, on the same machine, with the same
# client and the same injected faults:
#
#   client -> RETRY FILTER -> delay (1 ms per request) -> error (R% EIO)
#          -> memory
#
# The delay filter sits above the error filter, so that every attempt,
# failed or not, costs a round trip, as against a remote store.  For each
# error rate R (10% and 30%) and each retry filter setting, the client
# makes OPS requests (default 10,000: 60% 4 KiB reads, 35% 4 KiB writes, 5%
# 64 KiB zeroes at random offsets) with QD requests in flight, and the
# script prints how many completed without a client-visible error, and the
# total time.  Not a test: it never passes or fails.
#
# Settings compared:
#   retry-backoff            the filter's defaults (8 attempts, 100ms first
#                            delay ceiling, full jitter, 10s max, 60s
#                            deadline, reopen after 3 consecutive failures)
#   retry-request            nbdkit's defaults (2 retries, 2 s fixed delay)
#   retry-request 8x1s       retry-request-retries=8 retry-request-delay=1
#                            (as many retries as retry-backoff; 1 s is its
#                            smallest delay, it takes whole seconds)
#   none                     no retry filter: the injected errors as such
#
# Usage (from a build directory):  bench/retry-backoff.sh
# Environment: NBDKIT (default ./nbdkit of the build tree), OPS (10000),
# QD (64; nbdkit runs with as many threads), RATES ("10% 30%"), DELAY
# (1ms), SEED (1), SETTINGS (a subset of: backoff request request8 none).
# Needs python3 with the nbd module (python3-libnbd).  Takes about
# 5 minutes, nearly all of it retry-request sleeping whole seconds.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
. "$here/find-nbdkit.sh"
OPS="${OPS:-10000}"
QD="${QD:-64}"
RATES="${RATES:-10% 30%}"
DELAY="${DELAY:-1ms}"
SEED="${SEED:-1}"
SETTINGS="${SETTINGS:-backoff request request8 none}"
PYTHON=
for py in /usr/bin/python3 python3; do
    if $py -c 'import nbd' 2>/dev/null; then PYTHON=$py; break; fi
done
[ -n "$PYTHON" ] || { echo "python3 with the nbd module is needed (apt-get install python3-libnbd)"; exit 1; }

work="$(mktemp -d /tmp/shardkit-bench-retry.XXXXXX)"
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$work/client.py" <<'EOF'
# Makes OPS requests with QD in flight; prints "ok failed seconds".
import random, sys, time
import nbd

sock, ops, qd, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
h = nbd.NBD()
h.connect_unix(sock)
size = h.get_size()
rng = random.Random(seed)
data = rng.randbytes(4096)
done = {"ok": 0, "failed": 0}


def cb(err):                     # err.value: the command's errno, or 0
    done["ok" if err.value == 0 else "failed"] += 1
    return 1                     # retire the command


t = time.monotonic()
for i in range(ops):
    while h.aio_in_flight() >= qd:
        h.poll(-1)
    x = rng.random()
    off = rng.randrange(0, size // 4096) * 4096
    if x < 0.60:
        h.aio_pread(nbd.Buffer(4096), off, completion=cb)
    elif x < 0.95:
        h.aio_pwrite(data, off, completion=cb)
    else:
        off = rng.randrange(0, size // 65536) * 65536
        h.aio_zero(65536, off, completion=cb)
while h.aio_in_flight() > 0:
    h.poll(-1)
elapsed = time.monotonic() - t
h.shutdown()
print(done["ok"], done["failed"], "%.3f" % elapsed)
EOF

filter_args() {
    case "$1" in
        backoff)  echo "--filter=retry-backoff" ;;
        request)  echo "--filter=retry-request" ;;
        request8) echo "--filter=retry-request retry-request-retries=8 retry-request-delay=1" ;;
        none)     echo "" ;;
    esac
}
label() {
    case "$1" in
        backoff)  echo "retry-backoff (defaults)" ;;
        request)  echo "retry-request (defaults: 2 x 2s)" ;;
        request8) echo "retry-request (8 x 1s)" ;;
        none)     echo "no retry filter" ;;
    esac
}

echo "nbdkit:  $NBDKIT ($("$NBDKIT" --version 2>/dev/null | head -1))"
echo "machine: $(nproc) CPUs, $(uname -r)"
echo "run:     $OPS requests, $QD in flight, delay $DELAY per attempt, seed $SEED"
echo

declare -A OK TIME
for rate in $RATES; do
    for s in $SETTINGS; do
        read -r -a fa <<< "$(filter_args "$s")"
        filters=() params=()
        for a in "${fa[@]}"; do
            case "$a" in --filter=*) filters+=("$a") ;; *) params+=("$a") ;; esac
        done
        sock="$work/nbd.sock"
        rm -f "$sock"
        "$NBDKIT" -f -U "$sock" -t "$QD" "${filters[@]}" \
            --filter=delay --filter=error memory 256M \
            delay-read="$DELAY" delay-write="$DELAY" delay-zero="$DELAY" \
            error-rate="$rate" error=EIO "${params[@]}" \
            > "$work/nbdkit.log" 2>&1 &
        pid=$!
        for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
        read -r ok failed secs < <("$PYTHON" "$work/client.py" "$sock" "$OPS" "$QD" "$SEED")
        kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
        OK[$rate,$s]=$ok
        TIME[$rate,$s]=$secs
        printf '%-4s %-34s %6d / %d ok  %6d failed  %9.3f s\n' \
            "$rate" "$(label "$s")" "$ok" "$OPS" "$failed" "$secs"
    done
    echo
done

for rate in $RATES; do
    if [ -n "${TIME[$rate,backoff]:-}" ] && [ -n "${TIME[$rate,request]:-}" ]; then
        awk -v r="$rate" -v b="${TIME[$rate,backoff]}" -v q="${TIME[$rate,request]}" \
            -v q8="${TIME[$rate,request8]:-0}" 'BEGIN {
            printf "%s: retry-request (defaults) took %.1fx the time of retry-backoff", r, q / b
            if (q8 > 0) printf "; retry-request 8x1s %.1fx", q8 / b
            printf "\n" }'
    fi
done
