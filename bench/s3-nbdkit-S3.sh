#!/usr/bin/env bash
# nbdkit's own S3 plugin (Debian's nbdkit-plugin-python + python3-boto3)
# against a local S3 server, the baseline that s3-object is compared with:
#   - the server's own limit (s3-server-limit.py, 8 clients x 8 x 4 MiB);
#   - 256 MiB written with nbdcopy --flush, read back with nbdcopy from a
#     freshly started nbdkit (compared with the source);
#   - 4k random reads at iodepth 16 with fio (10 s) on a freshly started
#     nbdkit;
#   - CPU seconds nbdkit used per GiB moved (/proc/PID/stat).
# Debian 12's nbdkit refuses this plugin's object-size above 64K, so it
# runs at object-size=64K; for fio's 4k reads nbdkit's blocksize filter
# (minblock=64K) is in front, as the plugin itself refuses requests
# smaller than an object.
#
# Usage: bench/s3-nbdkit-S3.sh [ceph|s3rver]      (default ceph)
# Needs: nbdkit-plugin-python, python3-boto3, libnbd-bin (nbdcopy,
# nbdinfo), fio, and the server's packages (see tests/s3_server.py).
# Takes 1-2 minutes; the server holds 256 MiB (Ceph: about 600 MiB of RAM).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
server="${1:-ceph}"
if [ -z "${S3_ENDPOINT:-}" ]; then
    exec "$here/s3-run-server.py" "$server" -- "$0" "$@"
fi
. "$here/s3-functions.sh"

plugin=/usr/lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-S3-plugin
if [ ! -e "$plugin" ]; then
    echo "SKIP: nbdkit's S3 plugin not installed (apt-get install nbdkit-plugin-python python3-boto3)"
    exit 77
fi
for t in nbdcopy nbdinfo fio; do
    command -v "$t" >/dev/null || { echo "SKIP: $t missing"; exit 77; }
done

MiB=$((1024 * 1024))
size=256M
bytes=$((256 * MiB))
d="$(mktemp -d /tmp/shardkit-bench-XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do s3_stop "$p"; done
    rm -rf "$d"
}
trap cleanup EXIT

echo "== server: $S3_SERVER at $S3_ENDPOINT"
/usr/bin/python3 "$here/s3-server-limit.py" --rounds 1 \
    --endpoint "$S3_ENDPOINT" --bucket "$S3_BUCKET" --name "$S3_SERVER" \
    --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" |
    tee "$d/limit.out" | grep -E "round|RESULT" || true
limit_put=$(sed -n 's/^RESULT.*put_mibs=\([0-9.]*\).*/\1/p' "$d/limit.out")
limit_get=$(sed -n 's/^RESULT.*get_mibs=\([0-9.]*\).*/\1/p' "$d/limit.out")

head -c "$bytes" /dev/urandom >"$d/src"

# Write.
s3_start_nbdkit_S3 "$d/w.sock" disk "$size"
pids+=("$S3_NBDKIT_PID")
wsec=$(s3_nbdcopy_write "$d/src" "nbd+unix:///?socket=$d/w.sock")
wcpu=$(s3_cpu_seconds "$S3_NBDKIT_PID")
s3_stop "$S3_NBDKIT_PID"

# Read (a fresh nbdkit: nothing cached anywhere but in the server).
s3_start_nbdkit_S3 "$d/r.sock" disk "$size"
pids+=("$S3_NBDKIT_PID")
rsec=$(s3_nbdcopy_read "nbd+unix:///?socket=$d/r.sock" "$d/back")
rcpu=$(s3_cpu_seconds "$S3_NBDKIT_PID")
s3_stop "$S3_NBDKIT_PID"
if cmp -s "$d/src" "$d/back"; then same=identical; else same=DIFFERENT; fi
rm -f "$d/back"

# 4k random reads, cold.
s3_start_nbdkit_S3_any_size "$d/f.sock" disk "$size"
pids+=("$S3_NBDKIT_PID")
iops=$(s3_fio_randread "nbd+unix:///?socket=$d/f.sock" "$size" 10)
s3_stop "$S3_NBDKIT_PID"

wmibs=$(awk -v s="$wsec" 'BEGIN { printf "%.1f", 256 / s }')
rmibs=$(awk -v s="$rsec" 'BEGIN { printf "%.1f", 256 / s }')
echo "== nbdkit S3 plugin (Python/boto3, object-size=64K), $size"
echo "write  nbdcopy --flush  $wmibs MiB/s  ($wsec s)  $(s3_ratio "$wmibs" "$limit_put")x server PUT limit  CPU $(awk -v c="$wcpu" 'BEGIN { printf "%.2f", c * 4 }') s/GiB"
echo "read   nbdcopy          $rmibs MiB/s  ($rsec s)  $(s3_ratio "$rmibs" "$limit_get")x server GET limit  CPU $(awk -v c="$rcpu" 'BEGIN { printf "%.2f", c * 4 }') s/GiB  data $same"
echo "4k random read, iodepth 16, cold (blocksize filter minblock=64K): $iops IOPS"
echo "RESULT plugin=nbdkit-S3 server=$S3_SERVER write_mibs=$wmibs read_mibs=$rmibs write_cpu_s_per_gib=$(awk -v c="$wcpu" 'BEGIN { printf "%.2f", c * 4 }') read_cpu_s_per_gib=$(awk -v c="$rcpu" 'BEGIN { printf "%.2f", c * 4 }') randread_iops=$iops server_put_mibs=$limit_put server_get_mibs=$limit_get"
