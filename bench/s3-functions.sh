# Shell helpers for the S3 benchmarks; source this file from a bash script
# that runs under bench/s3-run-server.py (which sets S3_ENDPOINT,
# S3_BUCKET, S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY, S3_SERVER_PIDS).
#
#   s3_start_nbdkit_S3 SOCK KEY SIZE     nbdkit's own S3 plugin (Python,
#                                        boto3), object-size=64K
#   s3_start_nbdkit_S3_any_size SOCK KEY SIZE
#                                        the same behind nbdkit's blocksize
#                                        filter, for 4k requests (fio)
#   s3_start_s3_object SOCK EXPORT SIZE [PARAM=VALUE...]
#                                        shardkit's s3-object (build tree),
#                                        nbdkit options from
#                                        $S3_OBJECT_NBDKIT_OPTS
#   s3_start_nbdkit SOCK ARGS...         the build tree's nbdkit with any
#                                        options, plugin and parameters
#   s3_stop PID                          SIGTERM, wait; prints nothing
#   s3_cpu_seconds PID...                utime+stime of live processes
#   s3_now                               monotonic seconds, for timing
#   s3_nbdcopy_write FILE URI            nbdcopy --flush; prints seconds
#   s3_nbdcopy_read URI FILE             nbdcopy; prints seconds
#   s3_fio_randread URI SIZE [SECONDS]   4k random reads, iodepth 16;
#                                        prints IOPS
#   s3_ratio A B                         A/B with 2 decimals
#   median                               of the numbers on stdin (spaces
#                                        or lines)
#   delete_prefix PREFIX                 remove every object under PREFIX
#   per_gib CPU_S, mibs SECONDS          for $bytes moved
#
# Started servers' PIDs are in $S3_NBDKIT_PID after each start.  Credentials
# go through the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY),
# never the command line.

_s3_bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${S3_NBDKIT_BUILDDIR:=$PWD}"          # a build directory (./nbdkit)
: "${S3_REAL_NBDKIT:=nbdkit}"

s3_now() { date +%s.%N; }

median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

s3_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

s3_cpu_seconds() {
    local tck total=0 pid f
    tck="$(getconf CLK_TCK)"
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        # Fields after the ")" of the command name: utime is the 12th,
        # stime the 13th (fields 14 and 15 of stat).
        f="$(sed 's/^.*) //' "/proc/$pid/stat")"
        total=$(awk -v f="$f" -v t="$total" -v tck="$tck" \
            'BEGIN { split(f, a, " "); printf "%.2f", t + (a[12] + a[13]) / tck }')
    done
    echo "$total"
}

_s3_wait_socket() {
    local sock="$1" pid="$2" i
    for i in $(seq 1 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "nbdkit exited at start-up" >&2; return 1
        fi
        [ -S "$sock" ] && nbdinfo --size "nbd+unix:///?socket=$sock" \
            >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "nbdkit did not start" >&2
    return 1
}

# nbdkit's own S3 plugin.  Debian 12's nbdkit (1.32) refuses the plugin's
# block size when object-size is above 64K ("plugin must set minimum block
# size between 1 and 64K"), so it runs at 64K.  The plugin sets minimum =
# preferred = maximum = object-size: nbdcopy adapts to that, but a 4k
# read is refused by libnbd (EINVAL), so s3_start_nbdkit_S3_any_size puts
# nbdkit's blocksize filter in front (minblock=64K: a 4k read becomes a
# 64K read of the plugin; the filter does that under one lock).
s3_start_nbdkit_S3() {
    local sock="$1" key="$2" size="$3"; shift 3
    AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY" \
    AWS_DEFAULT_REGION="$S3_REGION" \
        "$S3_REAL_NBDKIT" -f -U "$sock" ${S3_NBDKIT_S3_FILTERS:-} S3 \
        endpoint-url="$S3_ENDPOINT" bucket="$S3_BUCKET" key="$key" \
        size="$size" object-size=64K "$@" \
        >"$sock.log" 2>&1 &
    S3_NBDKIT_PID=$!
    _s3_wait_socket "$sock" "$S3_NBDKIT_PID"
}

s3_start_nbdkit_S3_any_size() {
    S3_NBDKIT_S3_FILTERS=--filter=blocksize s3_start_nbdkit_S3 "$@" minblock=64K
}

s3_start_nbdkit() {
    local sock="$1"; shift
    "$S3_NBDKIT_BUILDDIR/nbdkit" -f -U "$sock" "$@" >"$sock.log" 2>&1 &
    S3_NBDKIT_PID=$!
    _s3_wait_socket "$sock" "$S3_NBDKIT_PID"
}

s3_start_s3_object() {
    local sock="$1" export="$2" size="$3"; shift 3
    AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY" \
        s3_start_nbdkit "$sock" ${S3_OBJECT_NBDKIT_OPTS:-} s3-object \
        endpoint="$S3_ENDPOINT" bucket="$S3_BUCKET" region="$S3_REGION" \
        url-style=path prefix=bench/ export="$export" size="$size" "$@"
}

s3_stop() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 0
}

s3_nbdcopy_write() {
    local t0 t1
    t0=$(s3_now)
    nbdcopy --flush "$1" "$2" || return 1
    t1=$(s3_now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

s3_nbdcopy_read() {
    local t0 t1
    t0=$(s3_now)
    nbdcopy "$1" "$2" || return 1
    t1=$(s3_now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

s3_fio_randread() {
    local uri="$1" size="$2" secs="${3:-10}"
    fio --name=randread --ioengine=nbd --uri="$uri" --rw=randread --bs=4k \
        --iodepth=16 --size="$size" --runtime="$secs" --time_based \
        --norandommap --randrepeat=0 --output-format=json 2>/dev/null |
        /usr/bin/python3 -c 'import json, sys
t = sys.stdin.read()            # fio prints a line before the JSON
j = json.loads(t[t.index("{"):])
r = j["jobs"][0]
if r.get("error"):
    sys.exit("fio: error %d" % r["error"])
print("%.0f" % r["read"]["iops"])'
}

# Remove every object under a prefix (the Ceph gateway keeps them in RAM).
delete_prefix() {
    /usr/bin/python3 - "$1" <<'PY'
import os, sys
import boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"],
                  aws_access_key_id=os.environ["S3_ACCESS_KEY"],
                  aws_secret_access_key=os.environ["S3_SECRET_KEY"],
                  region_name=os.environ["S3_REGION"],
                  config=Config(s3={"addressing_style": "path"}))
for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=os.environ["S3_BUCKET"], Prefix=sys.argv[1]):
    keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
    if keys:
        s3.delete_objects(Bucket=os.environ["S3_BUCKET"],
                          Delete={"Objects": keys, "Quiet": True})
PY
}

# CPU seconds C and elapsed seconds S for $bytes moved: per GiB, MiB/s.
per_gib() { awk -v c="$1" -v b="$bytes" 'BEGIN { printf "%.2f", c * 1073741824 / b }'; }
mibs() { awk -v s="$1" -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 / s }'; }
