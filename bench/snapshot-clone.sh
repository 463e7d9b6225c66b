#!/usr/bin/env bash
# Snapshots and clones (issue 14): how long `shardkit snapshot` and
# `shardkit clone` take for a 100 GiB volume with 25% allocated, in a
# directory and in a bucket of Ceph's RADOS gateway, what they send to
# the gateway, and how fast a clone reads against the volume's own.
#
# 1. A 100 GiB volume of 4 MiB chunks with every 4th chunk present
#    (6400 of 25600).  Neither command reads a chunk, so the chunks are
#    made cheaply: in a directory, chunk files of the full 4 MiB made
#    with truncate (present, sparse: no data blocks); in the bucket,
#    chunk objects of 16 bytes under the volume's keys (the listing
#    gives every key with its size; nothing reads the bodies).  Writing
#    25 GiB of real data would cost minutes and the disk (or, on Ceph's
#    in-memory OSD, 50 GiB of RAM) and change nothing that is measured.
#    - directory: REPS rounds, each on a fresh volume: snapshot, then
#      clone of the snapshot, timed (the tool's whole run, process start
#      included); the chunk files' names, inodes, sizes and mtimes are
#      compared before and after.  Then the time from starting nbdkit
#      sharded-file to the first 4 KiB read answered, for the volume
#      before its snapshot (flat), after it (layered over the snapshot),
#      the snapshot (-r) and the clone.
#    - Ceph: the first snapshot of a volume (all 6400 chunks its own),
#      REPS clones of it, and the volume's 2nd to REPSth snapshots (its
#      data then in its bases), timed; then one snapshot and one clone of a
#      second volume like the first, and a later snapshot of the first
#      (its REPS+1th: a chain of REPS bases), run through a recording
#      proxy (tests/s3_fault_proxy.py): requests by kind, requests on
#      chunk objects and chunk bytes each way (target: 0), all body
#      bytes.  The time to the first read of s3-object, as for the
#      directory.
# 2. Clone reads against the volume's own: SIZE_MIB of random data
#    written with nbdcopy --flush into a volume "vol" and into a volume
#    "flat" that is never snapshotted; then snapshot vol, clone it
#    (fresh: every read goes through to the snapshot) and clone it again
#    and rewrite every other chunk of that one ("half").  Each target is
#    served by its own nbdkit, all at once; nbdcopy reads each into
#    null: (once unmeasured, then REPS rounds, order reversed every
#    other round, median; MiB/s and the CPU seconds per GiB of the
#    target's nbdkit, the steadier figure on a shared machine), and in the directory also fio 4 KiB random
#    reads at iodepth 16 (RUNTIME seconds each).  Targets: flat, vol
#    (generation 1 over its snapshot, none of its data its own), snap
#    (-r), clone, half, and in the directory nbdkit's file plugin on a
#    file of the same bytes (a peer).
#    All of it is in the page cache: what is measured is the servers'
#    own cost, which is where layering could cost.
#
# Usage: bench/snapshot-clone.sh [dir|ceph|both] [WORKDIR]   (default both,
# WORKDIR a fresh directory under /var/tmp, removed afterwards unless
# given).  Knobs (environment): REPS (5: rounds of part 1, and of the
# directory's reads), S3_REPS (3: rounds of Ceph's reads), RUNTIME (fio
# seconds, 3), FIO=no (no random reads in the directory), S3_FIO=yes
# (random reads on Ceph too), SIZE_MIB (1024: the directory's part 2),
# S3_SIZE_MIB (256: Ceph's part 2; its OSD keeps about twice what is
# stored in RAM), OPEN_REPS (nbdkit starts per open time: 5 directory,
# 3 Ceph), VERBOSE=1 (every request the proxy saw).  Run from a build
# tree (uses ./nbdkit and tool/shardkit).  Needs libnbd-bin (nbdcopy),
# python3-libnbd, fio, and for Ceph its packages (tests/s3_server.py)
# and python3-boto3.  6-7 minutes in all at load 5-12 on 2 cores (40-50
# s of it putting 12,800 small objects on Ceph); 4.5 GiB in WORKDIR.
# Prints figures and ratios; never passes or fails on them.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
mode="${1:-both}"
case "$mode" in dir|ceph|both) ;; *) echo "usage: $0 [dir|ceph|both] [WORKDIR]" >&2; exit 2 ;; esac
if [ "$mode" = ceph ] && [ -z "${S3_ENDPOINT:-}" ]; then
    exec "$here/s3-run-server.py" ceph -- "$0" "$@"
fi
. "$here/find-nbdkit.sh"
# The build tree: the one of the nbdkit wrapper found.
S3_NBDKIT_BUILDDIR="$(dirname "$NBDKIT")"
TOOL="$S3_NBDKIT_BUILDDIR/tool/shardkit"
[ -x "$TOOL" ] && [ -x "$S3_NBDKIT_BUILDDIR/nbdkit" ] ||
    { echo "SKIP: run from a build tree (./nbdkit, tool/shardkit)"; exit 77; }
. "$here/s3-functions.sh"
for t in nbdcopy fio; do
    command -v "$t" >/dev/null || { echo "SKIP: $t missing"; exit 77; }
done

REPS="${REPS:-5}"
S3_REPS="${S3_REPS:-3}"
RUNTIME="${RUNTIME:-3}"
FIO="${FIO:-yes}"
MiB=$((1024 * 1024))
CHUNK=$((4 * MiB))
NCHUNKS=25600                           # 100 GiB of 4 MiB chunks
EVERY=4                                 # every 4th present: 6400, 25%
helper="$here/snapshot-clone.py"
keep_work="${2:-}"
work="${2:-$(mktemp -d /var/tmp/shardkit-snapclone.XXXXXX)}"
mkdir -p "$work"
pids=()
declare -A pid_of                       # served name -> nbdkit's PID
cleanup() {
    for p in "${pids[@]}"; do s3_stop "$p"; done
    if [ -z "$keep_work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load() { cut -d' ' -f1-3 /proc/loadavg; }
# timed CMD...: run it quietly, print its seconds.
timed() {
    local t0 t1
    t0=$(s3_now)
    "$@" >/dev/null
    t1=$(s3_now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
sk() { "$TOOL" "$@"; }
sk3() {
    AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY" \
        "$TOOL" --endpoint="$S3_ENDPOINT" --url-style=path "$@"
}
ms() { awk -v s="$1" 'BEGIN { printf "%.0f ms", s * 1000 }'; }
uri() { echo "nbd+unix:///?socket=$work/$1.sock"; }
# serve NAME ARGS...: nbdkit ARGS on $work/NAME.sock, kept until stop_all.
serve() {
    local name="$1"; shift
    rm -f "$work/$name.sock"
    s3_start_nbdkit "$work/$name.sock" "$@"
    pids+=("$S3_NBDKIT_PID")
    pid_of[$name]=$S3_NBDKIT_PID
}
# serve_dir|serve_s3 NAME VOLUME [-r]: VOLUME of $DIR or of the bucket,
# created with READ_SIZE bytes if it does not exist.
serve_dir() { serve "$1" ${3:+"$3"} sharded-file dir="$DIR" export="$2" size="$READ_SIZE"; }
serve_s3() {
    rm -f "$work/$1.sock"
    S3_OBJECT_NBDKIT_OPTS="${3:-}" s3_start_s3_object "$work/$1.sock" "$2" "$READ_SIZE"
    pids+=("$S3_NBDKIT_PID")
    pid_of[$1]=$S3_NBDKIT_PID
}
stop_all() {
    for p in "${pids[@]}"; do s3_stop "$p"; done
    pids=()
}
# The names, inodes, sizes and mtimes of a directory's chunk files.
fingerprint() {
    find "$1" -name '*.chunk' -printf '%f %i %s %T@\n' | sort | md5sum | cut -c1-32
}
# open_time NAME REPS NBDKIT-ARGS...: median seconds to the first read.
open_time() {
    local name="$1" n="$2"; shift 2
    "$helper" open-time "$n" "$work/$name.sock" \
        "$S3_NBDKIT_BUILDDIR/nbdkit" -f -U "$work/$name.sock" "$@" | cut -d' ' -f1
}

# Part 2, for a directory or a bucket: vol and flat written from
# $work/src, then vol's snapshot snap, its clones clone and half (every
# other chunk rewritten), and all five served.  SK is sk or sk3, WHERE
# its volumes, SERVE serve_dir or serve_s3.
reads_setup() {
    local sk="$1" where="$2" srv="$3" v
    for v in vol flat; do
        "$srv" w "$v"
        nbdcopy --flush "$work/src" "$(uri w)"
        stop_all
    done
    "$sk" snapshot "$where" vol snap >/dev/null
    "$sk" clone "$where" snap clone >/dev/null
    "$sk" clone "$where" snap half >/dev/null
    "$srv" w half
    "$helper" rewrite-half "$(uri w)" "$CHUNK"
    stop_all
    sync                        # no writeback during the reads
    for v in flat vol clone half; do "$srv" "$v" "$v"; done
    "$srv" snap snap -r
    if nbdcopy "$(uri clone)" - | cmp -s - "$work/src"; then
        echo "  the clone reads the volume's data: identical"
    else
        echo "  the clone reads DIFFERENT data from the volume's"
    fi
}

# read_rounds TARGETS SIZE REPS: read TARGETS (names of served sockets)
# once unmeasured, then with nbdcopy into null: (MiB/s, and the CPU
# seconds per GiB of the target's nbdkit) and, if FIO_HERE=yes, with fio
# (4k random reads), in REPS rounds, the order reversed every other
# round; prints the medians and their ratios to "vol" and "flat".
read_rounds() {
    local targets="$1" size="$2" reps="$3" r t order c0 sec m cols
    local -A v                          # v[METRIC.TARGET]: the samples
    # One read of each, not measured: a fresh nbdkit's first session
    # faults its buffers in (and the clone's was the data check).
    for t in $targets; do nbdcopy "$(uri "$t")" null:; done
    for r in $(seq 1 "$reps"); do
        if ((r % 2)); then order="$targets"
        else order="$(tr ' ' '\n' <<<"$targets" | tac | tr '\n' ' ')"; fi
        for t in $order; do
            c0=$(s3_cpu_seconds "${pid_of[$t]}")
            sec=$(s3_nbdcopy_read "$(uri "$t")" null:)
            v[seq.$t]+=" $(mibs "$sec")"
            v[cpu.$t]+=" $(per_gib "$(awk -v a="$c0" -v b="$(s3_cpu_seconds "${pid_of[$t]}")" 'BEGIN { print b - a }')")"
        done
        if [ "$FIO_HERE" = yes ]; then
            for t in $order; do
                v[rnd.$t]+=" $(s3_fio_randread "$(uri "$t")" "$size" "$RUNTIME")"
            done
        fi
        echo "  round $r (load $(load)):"
        for t in $targets; do
            printf "    %-6s sequential%s MiB/s, nbdkit CPU%s s/GiB%s\n" "$t" \
                "${v[seq.$t]}" "${v[cpu.$t]}" \
                "$([ "$FIO_HERE" = yes ] && echo ";  4k random${v[rnd.$t]} IOPS")"
        done
    done
    # METRIC:HEADING:NAME IN THE RESULT LINE
    cols="seq:seq_MiB/s:seq_mibs cpu:CPU_s/GiB:seq_cpu_s_per_gib"
    [ "$FIO_HERE" = yes ] && cols+=" rnd:4k_IOPS:randread_iops"
    echo "  medians of $reps (ratios: x vol, x flat; for CPU, lower is less):"
    printf "    %-6s" target
    for m in $cols; do m="${m#*:}"; printf " %12s %6s %6s" "${m%%:*}" /vol /flat; done
    echo
    for t in $targets; do
        printf "    %-6s" "$t"
        for m in $cols; do
            local x key="${m%%:*}"
            x=$(median <<<"${v[$key.$t]}")
            printf " %12s %6s %6s" "$x" \
                "$(s3_ratio "$x" "$(median <<<"${v[$key.vol]}")")" \
                "$(s3_ratio "$x" "$(median <<<"${v[$key.flat]}")")"
            RESULT+=" ${PART}_${t}_${m##*:}=$x"
        done
        echo
    done
}

RESULT=""

dir_part() {
    local d r ts tc before after same=yes snaps="" clones="" n
    echo "== directory ($work, $(df -T "$work" | awk 'NR==2 {print $2}')), load $(load)"
    echo "-- 1. snapshot and clone: 100 GiB volume, 4 MiB chunks, 6400 chunk" \
         "files (25%) made with truncate -s 4M (sparse: neither command reads" \
         "a chunk, so their data would change nothing measured)"
    for r in $(seq 1 "$REPS"); do
        d="$work/p1-$r"
        mkdir -p "$d"
        sk create "$d" vol 100G >/dev/null
        (cd "$d" && seq 0 "$EVERY" $((NCHUNKS - 1)) | sed 's/.*/vol.&.chunk/' |
             xargs truncate -s 4M)
        n=$(find "$d" -name 'vol.*.chunk' | wc -l)
        before=$(fingerprint "$d")
        ts=$(timed sk snapshot "$d" vol snap)
        tc=$(timed sk clone "$d" snap clone)
        after=$(fingerprint "$d")
        [ "$before" = "$after" ] || same=no
        snaps+=" $ts"; clones+=" $tc"
        echo "  round $r: $n chunk files; snapshot $(ms "$ts"), clone $(ms "$tc")" \
             "(load $(load))"
        rm -rf "$d"
    done
    ts=$(median <<<"$snaps"); tc=$(median <<<"$clones")
    echo "  median of $REPS: snapshot $(ms "$ts"), clone $(ms "$tc");" \
         "chunk files unchanged (names, inodes, sizes, mtimes): $same"
    RESULT+=" dir_snapshot_s=$ts dir_clone_s=$tc dir_chunks_unchanged=$same"

    d="$work/open"
    mkdir -p "$d"
    sk create "$d" vol 100G >/dev/null
    (cd "$d" && seq 0 "$EVERY" $((NCHUNKS - 1)) | sed 's/.*/vol.&.chunk/' |
         xargs truncate -s 4M)
    local n_open="${OPEN_REPS:-5}" of ol os oc
    of=$(open_time o "$n_open" sharded-file dir="$d" export=vol)
    sk snapshot "$d" vol snap >/dev/null
    sk clone "$d" snap clone >/dev/null
    ol=$(open_time o "$n_open" sharded-file dir="$d" export=vol)
    os=$(open_time o "$n_open" -r sharded-file dir="$d" export=snap)
    oc=$(open_time o "$n_open" sharded-file dir="$d" export=clone)
    echo "  nbdkit start to first 4 KiB read (median of $n_open): volume before" \
         "the snapshot $(ms "$of"), after it $(ms "$ol"), snapshot (-r)" \
         "$(ms "$os"), clone $(ms "$oc") = $(s3_ratio "$oc" "$of")x the volume" \
         "before, $(s3_ratio "$oc" "$ol")x after"
    RESULT+=" dir_open_flat_s=$of dir_open_vol_s=$ol dir_open_snap_s=$os dir_open_clone_s=$oc"
    rm -rf "$d"

    echo "-- 2. reads: ${SIZE_MIB:-1024} MiB of random data, vol (snapshotted)," \
         "flat (never), snap, clone (fresh), half (clone, every other chunk" \
         "rewritten), file (nbdkit's file plugin, same bytes)"
    local size_mib="${SIZE_MIB:-1024}"
    bytes=$((size_mib * MiB))
    d="$work/p2"
    mkdir -p "$d"
    head -c "$bytes" /dev/urandom >"$work/src"
    cp "$work/src" "$work/file.img"
    READ_SIZE="${size_mib}M" DIR="$d" reads_setup sk "$d" serve_dir
    serve file file "$work/file.img"
    FIO_HERE="$FIO" PART=dir read_rounds "flat vol snap clone half file" "${size_mib}M" "$REPS"
    stop_all
    n() { find "$d" -maxdepth 1 -name "$1.*.chunk" | wc -l; }
    echo "  chunk files afterwards: vol $(n vol@1) of its own (generation 1)," \
         "clone $(n clone), half $(n half) (reads copied nothing up)"
    rm -rf "$d" "$work/src" "$work/file.img"
    echo "== directory done, load $(load)"
}

ceph_part() {
    local W="s3://$S3_BUCKET/bench" t0 t r ts tc n c k
    echo "== $S3_SERVER at $S3_ENDPOINT, load $(load)"
    echo "-- 1. snapshot and clone: 100 GiB volume, 4 MiB chunks, 6400 chunk" \
         "objects (25%) of 16 bytes each (neither command reads a chunk)"
    sk3 create "$W" vol 100G >/dev/null
    sk3 create "$W" cnt 100G >/dev/null
    t0=$(s3_now)
    for v in vol cnt; do
        "$helper" s3-put-chunks bench "$v" "$NCHUNKS" "$EVERY" 16
    done
    echo "  (2 x 6400 chunk objects PUT in $(awk -v a="$t0" -v b="$(s3_now)" \
        'BEGIN { printf "%.1f", b - a }') s, 16 at a time)"
    local n_open="${OPEN_REPS:-3}" of ol os oc
    local s3args=(s3-object endpoint="$S3_ENDPOINT" bucket="$S3_BUCKET"
                  region="$S3_REGION" url-style=path prefix=bench/)
    export AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY"
    of=$(open_time o "$n_open" "${s3args[@]}" export=vol)
    ts=$(timed sk3 snapshot "$W" vol s1)
    local clones="" later=""
    for r in $(seq 1 "$REPS"); do clones+=" $(timed sk3 clone "$W" s1 c$r)"; done
    for r in $(seq 2 "$REPS"); do later+=" $(timed sk3 snapshot "$W" vol s$r)"; done
    tc=$(median <<<"$clones")
    echo "  first snapshot $(ms "$ts"); clone of it (median of $REPS) $(ms "$tc")" \
         "[$clones ]; later snapshots [$later ] s (load $(load))"
    RESULT+=" ceph_snapshot_s=$ts ceph_clone_s=$tc"
    [ -n "$later" ] && RESULT+=" ceph_later_snapshot_s=$(median <<<"$later")"
    ol=$(open_time o "$n_open" "${s3args[@]}" export=vol)
    os=$(open_time o "$n_open" -r "${s3args[@]}" export=s1)
    oc=$(open_time o "$n_open" "${s3args[@]}" export=c1)
    echo "  nbdkit s3-object start to first 4 KiB read (median of $n_open):" \
         "volume before the snapshot $(ms "$of"), after the snapshots $(ms "$ol")," \
         "snapshot (-r) $(ms "$os"), clone $(ms "$oc") = $(s3_ratio "$oc" "$of")x" \
         "the volume before, $(s3_ratio "$oc" "$ol")x after"
    RESULT+=" ceph_open_flat_s=$of ceph_open_vol_s=$ol ceph_open_snap_s=$os ceph_open_clone_s=$oc"
    echo "  through a recording proxy (requests: total, by kind; chunk objects" \
         "touched; chunk bytes up/down; all body bytes up/down; seconds):"
    for c in "first snapshot:snapshot $W cnt cs" "clone:clone $W cs cc" \
             "snapshot $((REPS + 1)) of a volume:snapshot $W vol sx"; do
        # shellcheck disable=SC2086
        r=$("$helper" s3-count "$TOOL" ${c#*:})
        echo "    ${c%%:*}: $r"
        k="ceph_$(tr -c 'a-z0-9\n' _ <<<"${c%%:*}")"
        RESULT+=" ${k}_requests=$(sed 's/^requests=\([0-9]*\).*/\1/' <<<"$r")"
        RESULT+=" ${k}_chunk_requests=$(sed 's/.*chunk_requests=\([0-9]*\).*/\1/' <<<"$r")"
    done
    delete_prefix bench/

    local size_mib="${S3_SIZE_MIB:-256}"
    echo "-- 2. reads: $size_mib MiB of random data through s3-object, vol" \
         "(snapshotted), flat (never), snap, clone (fresh), half (clone," \
         "every other chunk rewritten)"
    bytes=$((size_mib * MiB))
    head -c "$bytes" /dev/urandom >"$work/src"
    READ_SIZE="${size_mib}M" reads_setup sk3 "$W" serve_s3
    FIO_HERE="${S3_FIO:-no}" PART=ceph read_rounds "flat vol snap clone half" "${size_mib}M" "$S3_REPS"
    stop_all
    n=$(/usr/bin/python3 - <<'PY'
import os, re, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"],
                  region_name=os.environ["S3_REGION"],
                  config=Config(s3={"addressing_style": "path"}))
c = {}
for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=os.environ["S3_BUCKET"], Prefix="bench/"):
    for o in page.get("Contents", []):
        m = re.match(r"bench/([^.]+)\.\d+\.chunk$", o["Key"])
        if m:
            c[m.group(1)] = c.get(m.group(1), 0) + 1
print("vol@1 %d, clone %d, half %d" % (c.get("vol@1", 0), c.get("clone", 0),
                                       c.get("half", 0)))
PY
)
    echo "  chunk objects afterwards: $n (reads copied nothing up)"
    delete_prefix bench/
    rm -f "$work/src"
    echo "== $S3_SERVER done, load $(load)"
}

echo "snapshot-clone: $(nproc) CPUs, $(uname -r), nbdkit $("$NBDKIT" --version 2>/dev/null | awk '{print $2; exit}'), REPS=$REPS, load $(load) (1, 5, 15 min)"
if [ "$mode" != ceph ]; then
    dir_part
fi
if [ "$mode" = both ]; then
    # The gateway's part runs beside a fresh one (its own process).
    "$here/s3-run-server.py" ceph -- "$0" ceph "$work/ceph" || echo "Ceph part failed (exit $?)"
fi
if [ "$mode" = ceph ]; then
    ceph_part
fi
[ -n "$RESULT" ] && echo "RESULT$RESULT"
exit 0
