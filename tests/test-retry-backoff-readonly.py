"""retry-backoff: retry-readonly=true.  (1) With writes that keep failing,
the reopen is read-only and the connection's writes then fail with EROFS
at once, without reaching the plugin, while reads carry on.  (2) A write
that fails with EROFS switches the connection to read-only: later writes
do not reach the plugin.  Without retry-readonly, reopens stay read-write
and every write reaches the plugin."""

import errno
import os
import re
import time

import nbd

from shardkit_test import VALGRIND, Server, check, tmpdir

SRCDIR = os.environ.get("srcdir", os.path.dirname(os.path.abspath(__file__)))
FLAKY = os.path.join(SRCDIR, "test-retry-backoff-flaky.sh")
SIZE = 65536


def flaky(*params):
    d = tmpdir("shardkit-flaky-")
    with open(os.path.join(d, "disk"), "wb") as f:
        f.write(b"\x55" * SIZE)
    srv = Server(["--filter=retry-backoff", "sh", FLAKY,
                  "retry-delay=1ms"] + list(params), env={"FLAKY_DIR": d})
    return srv, d


def put(d, name, value):
    with open(os.path.join(d, name), "w") as f:
        f.write(str(value))


def log(d):
    with open(os.path.join(d, "log")) as f:
        return [l.split() for l in f]


def write_fails(h, errnum):
    t = time.monotonic()
    try:
        h.pwrite(b"x" * 512, 0)
    except nbd.Error as e:
        check(e.errnum == errnum, "write failed with %s, expected %s"
              % (e.errno, errno.errorcode[errnum]))
        return time.monotonic() - t
    check(False, "write succeeded")


def finish(srv, h):
    h.shutdown()
    deadline = time.monotonic() + (60 if VALGRIND else 10)
    while "connection summary:" not in srv.output() and \
            time.monotonic() < deadline:
        time.sleep(0.01)
    srv.stop()


# nbdkit reports EROFS to NBD clients as EPERM (NBD has no EROFS).
NBD_EROFS = errno.EPERM

# 1. Writes keep failing with EIO: after reopen-after=2 failures the
#    plugin is reopened read-only; the write then ends with EROFS.
srv, d = flaky("retry-readonly=true", "reopen-after=2", "retries=5")
h = srv.connect()
put(d, "fail-pwrite", 1000)
write_fails(h, NBD_EROFS)
calls = [c for c in log(d) if c[0] == "pwrite"]
check(len(calls) == 2, "pwrite reached the plugin %d times, expected 2"
      % len(calls))
check(["open", "h2", "readonly=true"] in log(d), "no read-only reopen")
# The next write fails at once, without reaching the plugin.
elapsed = write_fails(h, NBD_EROFS)
check(len([c for c in log(d) if c[0] == "pwrite"]) == 2,
      "a write reached the plugin after the read-only fallback")
check(elapsed < (5 if VALGRIND else 0.5), "EROFS took %.3fs" % elapsed)
# Reads carry on.
check(h.pread(4, 100) == b"\x55" * 4, "read after read-only fallback")
finish(srv, h)
check(re.search(r"reopening the plugin context \(2 consecutive failures, "
                r"readonly=1\)", srv.output()), "reopen line")
print("retry-readonly: reopened read-only, writes refused, reads work")

# 2. A write refused with EROFS by the plugin (a store gone read-only).
srv, d = flaky("retry-readonly=true")
h = srv.connect()
put(d, "errno", "EROFS")
put(d, "fail-pwrite", 1000)
write_fails(h, NBD_EROFS)
write_fails(h, NBD_EROFS)
write_fails(h, NBD_EROFS)
calls = [c for c in log(d) if c[0] == "pwrite"]
check(len(calls) == 1, "pwrite reached the plugin %d times, expected 1"
      % len(calls))
check(h.pread(4, 100) == b"\x55" * 4, "read after EROFS")
finish(srv, h)
check("connection continues read-only" in srv.output(), "log line")

# 3. Without retry-readonly: each EROFS write reaches the plugin once (no
#    retry, no fallback), and an EIO-failing write recovers after a
#    read-write reopen.
srv, d = flaky("reopen-after=2")
h = srv.connect()
put(d, "errno", "EROFS")
put(d, "fail-pwrite", 2)
write_fails(h, NBD_EROFS)
write_fails(h, NBD_EROFS)
check(len([c for c in log(d) if c[0] == "pwrite"]) == 2,
      "EROFS writes were retried or dropped")
put(d, "errno", "EIO")
put(d, "bad-h1", 1)
h.pwrite(b"rw", 10)
check(h.pread(2, 10) == b"rw", "write after read-write reopen")
finish(srv, h)
check(["open", "h2", "readonly=false"] in log(d), "reopen was not read-write")
print("ok")
