#!/usr/bin/env bash
# s3-object against one local S3 server, alternating in each round with
# the server's own limit and with nbdkit's own S3 plugin:
#   - the server's limit: 8 clients x 8 objects x 4 MiB PUT then GET
#     (s3-server-limit.py, one kept-alive connection per client), with
#     the PUT digests computed in advance (the server's own limit) and
#     computed by the clients while they PUT ("digest-paying client": the
#     most a client that sends the signed SHA-256 every s3-object chunk
#     PUT carries can get on these cores);
#   - 256 MiB written with nbdcopy --flush, read back with nbdcopy from a
#     freshly started nbdkit (and compared with the source), and read
#     again from a fresh nbdkit into null: (nbdcopy discards the data, as
#     the server-limit clients do: no file to write on the same 2 cores);
#   - 4k random reads at iodepth 16 with fio (10 s) on a freshly started
#     nbdkit ("cold": neither plugin caches anything);
#   - CPU seconds nbdkit used per GiB moved (utime+stime, /proc/PID/stat).
# nbdkit's own S3 plugin runs at object-size=64K: Debian 12's nbdkit (1.32)
# refuses its object-size above 64K ("plugin must set minimum block size"),
# and for fio's 4k reads nbdkit's blocksize filter (minblock=64K) is in
# front of it.  s3-object runs with its defaults (4 MiB chunks,
# connections=16), and again with nbdkit's --threads=4: nbdcopy opens 4
# connections, so that is 16 requests at a time, one per HTTP connection,
# instead of 64 nbdkit threads that each zero a fresh 4 MiB buffer
# (see PERFORMANCE in nbdkit-s3-object-plugin(1)).  fio uses one
# connection, so --threads=4 leaves it 4 requests at a time: its IOPS
# figure for that variant is printed but not the one to read.
#
# Usage: bench/s3-object.sh [ceph|s3rver] [ROUNDS]    (default ceph 2)
# Knobs (environment): SIZE_MIB (256; the server holds at most twice
# that at a time), THREADS4=no (skip the --threads=4 variant), FIO=no
# (skip the random reads), HUGETLB=yes (one more variant at the
# defaults, nbdkit run with GLIBC_TUNABLES=glibc.malloc.hugetlb=1: see
# PERFORMANCE in the man page), S3_OBJECT_B_BUILDDIR=DIR (another build of
# shardkit, e.g. main's, run as "s3-object (B)" at the defaults in
# every round, for A/B figures from one run).  The load average
# (uptime) is printed with every round: the machine may be shared.
# Run from a build directory (uses ./nbdkit).  Needs libnbd-bin (nbdcopy,
# nbdinfo), fio, nbdkit-plugin-python + python3-boto3 (for the baseline),
# and the server's packages (see tests/s3_server.py).  Takes about
# 2 minutes per round at 256 MiB.
# Prints figures and ratios; never passes or fails on them.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
server="${1:-ceph}"
rounds="${2:-2}"
if [ -z "${S3_ENDPOINT:-}" ]; then
    exec "$here/s3-run-server.py" "$server" -- "$0" "$@"
fi
. "$here/s3-functions.sh"

for t in nbdcopy nbdinfo fio; do
    command -v "$t" >/dev/null || { echo "SKIP: $t missing"; exit 77; }
done
[ -x "$S3_NBDKIT_BUILDDIR/nbdkit" ] ||
    { echo "SKIP: run from a build directory (./nbdkit missing)"; exit 77; }
baseline=yes
if [ ! -e /usr/lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-S3-plugin ]; then
    echo "note: nbdkit's S3 plugin not installed: no baseline" \
         "(apt-get install nbdkit-plugin-python python3-boto3)"
    baseline=no
fi

MiB=$((1024 * 1024))
size_mib="${SIZE_MIB:-256}"
size=${size_mib}M
bytes=$((size_mib * MiB))
threads4="${THREADS4:-yes}"
fio="${FIO:-yes}"
hugetlb="${HUGETLB:-no}"
bdir="${S3_OBJECT_B_BUILDDIR:-}"
if [ -n "$bdir" ] && [ ! -x "$bdir/nbdkit" ]; then
    echo "S3_OBJECT_B_BUILDDIR=$bdir: no ./nbdkit there" >&2; exit 1
fi
d="$(mktemp -d /tmp/shardkit-bench-XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do s3_stop "$p"; done
    rm -rf "$d"
}
trap cleanup EXIT
head -c "$bytes" /dev/urandom >"$d/src"

# One plugin: write, read (fresh nbdkit), read into null: (fresh nbdkit),
# 4k random reads (fresh nbdkit).  START is a function taking SOCK NAME
# SIZE.  Sets W_MIBS R_MIBS N_MIBS W_CPU R_CPU N_CPU IOPS SAME.
run_plugin() {
    local start="$1" start_fio="$2" name="$3" wsec rsec
    # nbdkit leaves its Unix socket behind: a fresh name for every start.
    local w="$d/$name-w.sock" r="$d/$name-r.sock" f="$d/$name-f.sock"
    local n="$d/$name-n.sock" nsec
    "$start" "$w" "$name" "$size"
    pids+=("$S3_NBDKIT_PID")
    wsec=$(s3_nbdcopy_write "$d/src" "nbd+unix:///?socket=$w")
    W_CPU=$(per_gib "$(s3_cpu_seconds "$S3_NBDKIT_PID")")
    s3_stop "$S3_NBDKIT_PID"

    "$start" "$r" "$name" "$size"
    pids+=("$S3_NBDKIT_PID")
    rsec=$(s3_nbdcopy_read "nbd+unix:///?socket=$r" "$d/back")
    R_CPU=$(per_gib "$(s3_cpu_seconds "$S3_NBDKIT_PID")")
    s3_stop "$S3_NBDKIT_PID"
    if cmp -s "$d/src" "$d/back"; then SAME=identical; else SAME=DIFFERENT; fi
    rm -f "$d/back"

    "$start" "$n" "$name" "$size"
    pids+=("$S3_NBDKIT_PID")
    nsec=$(s3_nbdcopy_read "nbd+unix:///?socket=$n" null:)
    N_CPU=$(per_gib "$(s3_cpu_seconds "$S3_NBDKIT_PID")")
    s3_stop "$S3_NBDKIT_PID"

    IOPS=-
    if [ "$fio" = yes ]; then
        "$start_fio" "$f" "$name" "$size"
        pids+=("$S3_NBDKIT_PID")
        IOPS=$(s3_fio_randread "nbd+unix:///?socket=$f" "$size" 10)
        s3_stop "$S3_NBDKIT_PID"
    fi
    W_MIBS=$(mibs "$wsec")
    R_MIBS=$(mibs "$rsec")
    N_MIBS=$(mibs "$nsec")
}

# s3-object in round $r, nbdkit options from $S3_OBJECT_NBDKIT_OPTS: KEY
# names its figures in all[], LABEL is printed before them and NOTE after
# the IOPS; BUILDDIR (optional) is the shardkit build to run.  Ratios
# are to this round's limits ($lput, $lget).
s3_object_round() {
    local key="$1" label="$2" note="$3" k
    local S3_NBDKIT_BUILDDIR="${4:-$S3_NBDKIT_BUILDDIR}"
    # (only nbdkit's CPU is measured: nbdcopy and fio may share the setting)
    local -x GLIBC_TUNABLES="${5:-${GLIBC_TUNABLES:-}}"
    run_plugin s3_start_s3_object s3_start_s3_object "${key}vol$r"
    delete_prefix bench/ || echo "note: could not empty bench/ (carrying on)"
    for k in W_MIBS R_MIBS N_MIBS W_CPU R_CPU N_CPU IOPS; do all[$key$k]+=" ${!k}"; done
    printf "round %d  %-21s write %7s MiB/s (%sx, CPU %s s/GiB)  read %7s MiB/s (%sx, CPU %s s/GiB, %s)  read to null: %7s MiB/s (%sx, CPU %s s/GiB)  4k randread %s IOPS%s\n" \
        "$r" "$label" "$W_MIBS" "$(s3_ratio "$W_MIBS" "$lput")" "$W_CPU" \
        "$R_MIBS" "$(s3_ratio "$R_MIBS" "$lget")" "$R_CPU" "$SAME" \
        "$N_MIBS" "$(s3_ratio "$N_MIBS" "$lget")" "$N_CPU" "$IOPS" "$note"
}

echo "== server: $S3_SERVER at $S3_ENDPOINT, $rounds round(s), $size"
declare -A all
for r in $(seq 1 "$rounds"); do
    echo "round $r  load: $(uptime | sed 's/.*load average: //')"
    /usr/bin/python3 "$here/s3-server-limit.py" --rounds 1 \
        --endpoint "$S3_ENDPOINT" --bucket "$S3_BUCKET" --name "$S3_SERVER" \
        --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" \
        >"$d/limit.out"
    lput=$(sed -n 's/^RESULT.*put_mibs=\([0-9.]*\).*/\1/p' "$d/limit.out")
    lget=$(sed -n 's/^RESULT.*get_mibs=\([0-9.]*\).*/\1/p' "$d/limit.out")
    all[lput]+=" $lput"; all[lget]+=" $lget"
    printf "round %d  server limit          PUT %7s MiB/s  GET %7s MiB/s\n" \
        "$r" "$lput" "$lget"
    /usr/bin/python3 "$here/s3-server-limit.py" --rounds 1 --no-warmup \
        --client-digests --endpoint "$S3_ENDPOINT" --bucket "$S3_BUCKET" \
        --name "$S3_SERVER" --access-key "$S3_ACCESS_KEY" \
        --secret-key "$S3_SECRET_KEY" >"$d/limit.out"
    dput=$(sed -n 's/^RESULT.*put_mibs=\([0-9.]*\).*/\1/p' "$d/limit.out")
    all[dput]+=" $dput"
    printf "round %d  digest-paying client  PUT %7s MiB/s = %sx the PUT limit\n" \
        "$r" "$dput" "$(s3_ratio "$dput" "$lput")"

    s3_object_round s3 "s3-object" ""
    if [ -n "$bdir" ]; then
        s3_object_round b "s3-object (B)" "" "$bdir"
    fi
    if [ "$hugetlb" = yes ]; then
        s3_object_round h "s3-object hugetlb=1" "" "" glibc.malloc.hugetlb=1
    fi
    if [ "$threads4" = yes ]; then
        S3_OBJECT_NBDKIT_OPTS=--threads=4 \
            s3_object_round t4 "s3-object --threads=4" " (4 at a time)"
    fi

    if [ "$baseline" = yes ]; then
        run_plugin s3_start_nbdkit_S3 s3_start_nbdkit_S3_any_size "disk$r"
        # (s3rver has failed to list 16384 objects under heavy load)
        delete_prefix "disk$r" || echo "note: could not empty disk$r (carrying on)"
        for k in W_MIBS R_MIBS N_MIBS W_CPU R_CPU N_CPU IOPS; do all[py$k]+=" ${!k}"; done
        printf "round %d  nbdkit S3 (64K)       write %7s MiB/s (CPU %s s/GiB)  read %7s MiB/s (CPU %s s/GiB, %s)  read to null: %7s MiB/s (CPU %s s/GiB)  4k randread %s IOPS\n" \
            "$r" "$W_MIBS" "$W_CPU" "$R_MIBS" "$R_CPU" "$SAME" "$N_MIBS" "$N_CPU" "$IOPS"
    fi
    echo "round $r  done, load: $(uptime | sed 's/.*load average: //')"
done

# (a variant that did not run: "-")
m() { [ -n "${all[$1]:-}" ] || { echo -; return 0; }; echo "${all[$1]}" | median; }
lput=$(m lput); lget=$(m lget); dput=$(m dput)
echo "== medians over $rounds round(s)"
echo "server limit:   PUT $lput MiB/s   GET $lget MiB/s"
echo "digest-paying client: PUT $dput MiB/s = $(s3_ratio "$dput" "$lput")x PUT limit"
variants=s3
[ -n "$bdir" ] && variants+=" b"
[ "$hugetlb" = yes ] && variants+=" h"
[ "$threads4" = yes ] && variants+=" t4"
for v in $variants; do
    case $v in
        s3) label="s3-object:     " ;;
        b)  label="s3-object (B): " ;;
        h)  label="s3-object huge:" ;;
        t4) label="s3-object -t4: " ;;
    esac
    echo "$label write $(m ${v}W_MIBS) MiB/s = $(s3_ratio "$(m ${v}W_MIBS)" "$lput")x PUT limit" \
         "= $(s3_ratio "$(m ${v}W_MIBS)" "$dput")x digest-paying client, CPU $(m ${v}W_CPU) s/GiB;" \
         "read $(m ${v}R_MIBS) MiB/s = $(s3_ratio "$(m ${v}R_MIBS)" "$lget")x GET limit, CPU $(m ${v}R_CPU) s/GiB;" \
         "read to null: $(m ${v}N_MIBS) MiB/s = $(s3_ratio "$(m ${v}N_MIBS)" "$lget")x GET limit, CPU $(m ${v}N_CPU) s/GiB;" \
         "4k randread $(m ${v}IOPS) IOPS"
done
if [ "$baseline" = yes ]; then
    echo "nbdkit S3 64K:  write $(m pyW_MIBS) MiB/s, CPU $(m pyW_CPU) s/GiB;" \
         "read $(m pyR_MIBS) MiB/s, CPU $(m pyR_CPU) s/GiB;" \
         "read to null: $(m pyN_MIBS) MiB/s, CPU $(m pyN_CPU) s/GiB; 4k randread $(m pyIOPS) IOPS"
    echo "s3-object / nbdkit S3: write $(s3_ratio "$(m s3W_MIBS)" "$(m pyW_MIBS)")x," \
         "read $(s3_ratio "$(m s3R_MIBS)" "$(m pyR_MIBS)")x," \
         "read to null: $(s3_ratio "$(m s3N_MIBS)" "$(m pyN_MIBS)")x, 4k randread $(s3_ratio "$(m s3IOPS)" "$(m pyIOPS)")x"
fi
echo "RESULT plugin=s3-object server=$S3_SERVER write_mibs=$(m s3W_MIBS) read_mibs=$(m s3R_MIBS) write_cpu_s_per_gib=$(m s3W_CPU) read_cpu_s_per_gib=$(m s3R_CPU) null_read_mibs=$(m s3N_MIBS) null_read_cpu_s_per_gib=$(m s3N_CPU) randread_iops=$(m s3IOPS) server_put_mibs=$lput server_get_mibs=$lget digest_paying_put_mibs=$dput t4_write_mibs=$(m t4W_MIBS) t4_write_cpu_s_per_gib=$(m t4W_CPU) t4_null_read_mibs=$(m t4N_MIBS) t4_null_read_cpu_s_per_gib=$(m t4N_CPU)"
