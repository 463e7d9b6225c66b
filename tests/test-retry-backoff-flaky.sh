#!/bin/sh
# Not a test by itself: an nbdkit sh plugin script that fails on demand,
# used by the test-retry-backoff-*.py tests (nbdkit sh THIS-SCRIPT).
# GPL-3.0-or-later.
#
# All state lives in the directory $FLAKY_DIR:
#   disk           the data (the test creates it; its size is the export's)
#   opens          opens so far; the handle of open number n is "hn"
#   fail-METHOD    while this number is > 0, METHOD fails (and decrements
#                  it): METHOD is open, pread, pwrite, zero, trim, flush,
#                  extents or cache
#   bad-HANDLE     if present, every data request on that handle fails
#                  (a connection whose state went bad)
#   errno          the errno name a failure reports (default EIO)
#   size-HANDLE    the export size that HANDLE reports (default: the
#                  size of disk)
#   log            one line per call: METHOD HANDLE COUNT OFFSET FLAGS [SHA]
D="$FLAKY_DIR"

take () {
    left=$(cat "$D/fail-$1" 2>/dev/null || echo 0)
    [ "$left" -gt 0 ] || return 1
    echo $((left - 1)) > "$D/fail-$1"
}
failure () {
    echo "$(cat "$D/errno" 2>/dev/null || echo EIO) injected $1 failure" >&2
    exit 1
}
check () {    # check METHOD HANDLE
    if [ -e "$D/bad-$2" ] || take "$1"; then failure "$1"; fi
}

method="$1"
shift
case "$method" in
    open)
        n=$(( $(cat "$D/opens" 2>/dev/null || echo 0) + 1 ))
        echo "$n" > "$D/opens"
        echo "open h$n readonly=$1" >> "$D/log"
        if take open; then failure open; fi
        echo "h$n" ;;
    close)
        echo "close $1" >> "$D/log" ;;
    get_size)
        if [ -e "$D/size-$1" ]; then cat "$D/size-$1"
        else stat -c %s "$D/disk"; fi ;;
    can_write|can_flush|can_trim|can_zero|can_extents|can_multi_conn)
        exit 0 ;;
    can_fua|can_cache)
        echo native ;;
    pread)
        echo "pread $1 $2 $3" >> "$D/log"
        check pread "$1"
        dd if="$D/disk" skip="$3" count="$2" iflag=skip_bytes,count_bytes \
           status=none ;;
    pwrite)
        cat > "$D/wbuf.$$"
        sha=$(sha256sum < "$D/wbuf.$$" | cut -c1-16)
        echo "pwrite $1 $2 $3 ${4:--} $sha" >> "$D/log"
        if [ -e "$D/bad-$1" ] || take pwrite; then
            rm -f "$D/wbuf.$$"; failure pwrite
        fi
        dd if="$D/wbuf.$$" of="$D/disk" seek="$3" oflag=seek_bytes \
           conv=notrunc status=none
        rm -f "$D/wbuf.$$" ;;
    zero|trim)
        echo "$method $1 $2 $3 ${4:--}" >> "$D/log"
        check "$method" "$1"
        dd if=/dev/zero of="$D/disk" seek="$3" oflag=seek_bytes count="$2" \
           iflag=count_bytes conv=notrunc status=none ;;
    flush)
        echo "flush $1" >> "$D/log"
        check flush "$1" ;;
    extents)
        echo "extents $1 $2 $3" >> "$D/log"
        check extents "$1"
        echo "$3 $2 0" ;;
    cache)
        echo "cache $1 $2 $3" >> "$D/log"
        check cache "$1" ;;
    *)
        exit 2 ;;
esac
