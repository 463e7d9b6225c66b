"""retry-backoff: retry-readonly=true.  (1) Transient errors of reads or
writes never make the connection read-only: reopens stay read-write.
(2) A write that fails with EROFS switches the connection to read-only at
once: later writes fail with EROFS without reaching the plugin, reads
carry on, and later reopens are read-only.  (2b) EPERM does so only for
two write requests in a row.  (3) Without retry-readonly, reopens stay
read-write and every write reaches the plugin."""

import errno
import time

import nbd

from shardkit_test import (VALGRIND, check, flaky_server, logged_calls,
                           put_state, stop_after_summary)

SIZE = 65536


def flaky(*params):
    return flaky_server(["retry-delay=1ms"] + list(params), b"\x55" * SIZE)


def write_fails(h, errnum):
    t = time.monotonic()
    try:
        h.pwrite(b"x" * 512, 0)
    except nbd.Error as e:
        check(e.errnum == errnum, "write failed with %s, expected %s"
              % (e.errno, errno.errorcode[errnum]))
        return time.monotonic() - t
    check(False, "write succeeded")


# nbdkit reports EROFS to NBD clients as EPERM (NBD has no EROFS).
NBD_EROFS = errno.EPERM

# 1. Transient errors do not make a connection read-only: reads that
#    fail with EIO (and writes that do) lead to read-write reopens, and
#    writes keep reaching the plugin.
srv, d = flaky("retry-readonly=true", "reopen-after=2", "retries=5")
h = srv.connect()
put_state(d, "fail-pread", 3)
check(h.pread(4, 100) == b"\x55" * 4, "read after transient read errors")
check(["open", "h2", "readonly=false"] in logged_calls(d),
      "the reopen after read errors was not read-write")
h.pwrite(b"rw", 10)
check(h.pread(2, 10) == b"rw", "write after the reopen")
put_state(d, "fail-pwrite", 1000)
write_fails(h, errno.EIO)
put_state(d, "fail-pwrite", 0)
n = len([c for c in logged_calls(d) if c[0] == "pwrite"])
h.pwrite(b"ok", 20)
check(len([c for c in logged_calls(d) if c[0] == "pwrite"]) == n + 1,
      "a write did not reach the plugin after EIO write failures")
check(all(c[2] == "readonly=false" for c in logged_calls(d) if c[0] == "open"),
      "a reopen was read-only after transient errors")
stop_after_summary(srv, h)
check("connection continues read-only" not in srv.output(),
      "went read-only after transient errors")
print("retry-readonly: transient errors keep the connection writable")

# 2. A write refused with EROFS by the plugin (a store gone read-only):
#    read-only at once; later writes do not reach the plugin, and a reopen
#    (after read errors) is read-only.
srv, d = flaky("retry-readonly=true", "reopen-after=2")
h = srv.connect()
put_state(d, "errno", "EROFS")
put_state(d, "fail-pwrite", 1000)
write_fails(h, NBD_EROFS)
write_fails(h, NBD_EROFS)
elapsed = write_fails(h, NBD_EROFS)
check(elapsed < (5 if VALGRIND else 0.5), "EROFS took %.3fs" % elapsed)
calls = [c for c in logged_calls(d) if c[0] == "pwrite"]
check(len(calls) == 1, "pwrite reached the plugin %d times, expected 1"
      % len(calls))
check(h.pread(4, 100) == b"\x55" * 4, "read after EROFS")
put_state(d, "errno", "EIO")
put_state(d, "fail-pread", 2)
check(h.pread(4, 100) == b"\x55" * 4, "read after read errors")
check(["open", "h2", "readonly=true"] in logged_calls(d),
      "no read-only reopen")
stop_after_summary(srv, h)
check("EROFS: connection continues read-only" in srv.output(), "log line")
print("retry-readonly: EROFS: read-only at once, reopen read-only")

# 2b. EPERM: one refused write is not enough, two in a row are; a write
#     that succeeds in between starts the count again.
srv, d = flaky("retry-readonly=true")
h = srv.connect()
put_state(d, "errno", "EPERM")
put_state(d, "fail-pwrite", 1)
write_fails(h, errno.EPERM)
h.pwrite(b"a", 30)                  # succeeds: the count starts again
put_state(d, "fail-pwrite", 1000)
write_fails(h, errno.EPERM)
check(len([c for c in logged_calls(d) if c[0] == "pwrite"]) == 3,
      "a write did not reach the plugin after a single EPERM")
write_fails(h, errno.EPERM)         # the second in a row: read-only
write_fails(h, NBD_EROFS)
write_fails(h, NBD_EROFS)
check(len([c for c in logged_calls(d) if c[0] == "pwrite"]) == 4,
      "writes reached the plugin after two EPERM in a row")
check(h.pread(1, 30) == b"a", "read after EPERM fallback")
stop_after_summary(srv, h)
check("writes refused: connection continues read-only" in srv.output(),
      "log line")
print("retry-readonly: EPERM twice in a row: read-only")

# 3. Without retry-readonly: each EROFS write reaches the plugin once (no
#    retry, no fallback), and an EIO-failing write recovers after a
#    read-write reopen.
srv, d = flaky("reopen-after=2")
h = srv.connect()
put_state(d, "errno", "EROFS")
put_state(d, "fail-pwrite", 2)
write_fails(h, NBD_EROFS)
write_fails(h, NBD_EROFS)
check(len([c for c in logged_calls(d) if c[0] == "pwrite"]) == 2,
      "EROFS writes were retried or dropped")
put_state(d, "errno", "EIO")
put_state(d, "bad-h1", 1)
h.pwrite(b"rw", 10)
check(h.pread(2, 10) == b"rw", "write after read-write reopen")
stop_after_summary(srv, h)
check(["open", "h2", "readonly=false"] in logged_calls(d),
      "reopen was not read-write")
print("ok")
