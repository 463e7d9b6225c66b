"""retry-backoff: permanent failures end retrying at once.  (1) A reopen
whose open fails with a permanent errno (EACCES) returns that errno, no
more reopens.  (2) A reopened export that differs from the one the
client was promised (another size) fails the request, no more reopens.
(3) Opening at connect time that fails without an errno is not retried.
(4) A failure to finalize the old plugin context (lost data) fails the
request with ESHUTDOWN without a reopen, and the connection stays closed.
The plugin is test-retry-backoff-flaky.sh under nbdkit's sh plugin, or
memory under the test filter retry-backoff-faults.so."""

import errno
import os
import re
import time

import nbd

from shardkit_test import (VALGRIND, Server, check, flaky_server, logged_calls,
                           put_state, skip, stop_after_summary, tmpdir)

builddir = os.environ.get("builddir",
                          os.path.dirname(os.path.abspath(__file__)))
FAULTS = os.path.join(builddir, ".libs", "retry-backoff-faults.so")
if not os.path.exists(FAULTS):
    skip("retry-backoff-faults.so not built")
SIZE = 65536
FAST = 5 if VALGRIND else 1.0     # seconds: "at once", with slack


def flaky(*params):
    # Long delays: a retry that should not happen shows in the time.
    return flaky_server(["retry-delay=200ms", "retry-max-delay=200ms",
                         "reopen-after=1"] + list(params),
                        bytes(range(256)) * (SIZE // 256))


def read_fails(h):
    t = time.monotonic()
    try:
        h.pread(3, 10)
    except nbd.Error as e:
        return time.monotonic() - t, e
    check(False, "the read succeeded")


# 1. The reopen fails with EACCES: given up at once with EACCES.
fd = tmpdir("shardkit-rbfaults-")
errs = os.path.join(fd, "errors-on")
srv = Server(["--filter=retry-backoff", "--filter=" + FAULTS,
              "--filter=error", "memory", "size=1M",
              "error-pread-rate=100%", "error=EIO", "error-file=" + errs,
              "reopen-after=1", "retry-delay=200ms", "retry-max-delay=200ms"],
             env={"RB_FAULTS_DIR": fd})
h = srv.connect()
open(errs, "w").close()
put_state(fd, "open-eacces", "")
elapsed, e = read_fails(h)
stop_after_summary(srv, h)
print("reopen fails with EACCES: read failed after %.3fs: %s; calls %s"
      % (elapsed, e, logged_calls(fd)))
check(logged_calls(fd) == [["open"], ["finalize", "ok"], ["open"]],
      "expected the first open and one failed reopen: %s" % logged_calls(fd))
check(re.search(r"giving up after 2 attempts in [0-9.]+s: EACCES",
                srv.output()), "no give-up with EACCES in the log")
check(elapsed < 0.2 + FAST, "took %.3fs" % elapsed)

# 2. The reopened export has another size: the request fails (EIO), and
#    there is no further reopen (which would hand back the old size).
srv, d = flaky()
h = srv.connect()
put_state(d, "bad-h1", 1)
put_state(d, "size-h2", 2 * SIZE)
elapsed, e = read_fails(h)
stop_after_summary(srv, h)
opens = [l for l in logged_calls(d) if l[0] == "open"]
print("reopen changes the size: read failed after %.3fs: %s, %d opens"
      % (elapsed, e, len(opens)))
check(e.errnum == errno.EIO, "errno %s, expected EIO" % e.errno)
check(len(opens) == 2, "%d opens, expected 2" % len(opens))
check("the export changed size on reopen" in srv.output(), "no size error")
check(elapsed < 0.2 + FAST, "took %.3fs" % elapsed)

# 3. Opening at connect fails without an errno: one attempt, not retried
#    (the default delays would take seconds).
fd = tmpdir("shardkit-rbfaults-")
env = {"RB_FAULTS_DIR": fd}
srv = Server(["--filter=retry-backoff", "--filter=" + FAULTS, "memory",
              "size=1M"], env=env)
put_state(fd, "open-no-errno", "")
t = time.monotonic()
try:
    srv.connect()
    check(False, "connected although open fails")
except nbd.Error as e:
    elapsed = time.monotonic() - t
    print("open without errno: connect failed after %.3fs: %s"
          % (elapsed, e))
check(logged_calls(fd) == [["open"]], "open attempts: %s" % logged_calls(fd))
check(elapsed < FAST, "took %.3fs" % elapsed)
os.unlink(os.path.join(fd, "open-no-errno"))
h = srv.connect()
h.pwrite(b"ok", 0)
check(h.pread(2, 0) == b"ok", "serve once open works")
h.shutdown()
srv.stop()

# 4. Finalizing the old context fails at a reopen: ESHUTDOWN at once, no
#    reopen, and the connection stays closed (its data may be lost).
fd = tmpdir("shardkit-rbfaults-")
errs = os.path.join(fd, "errors-on")
srv = Server(["--filter=retry-backoff", "--filter=" + FAULTS,
              "--filter=error", "memory", "size=1M",
              "error-pread-rate=100%", "error=EIO", "error-file=" + errs,
              "reopen-after=1", "retry-delay=200ms", "retry-max-delay=200ms"],
             env={"RB_FAULTS_DIR": fd})
h = srv.connect()
h.pwrite(b"data", 0)
put_state(fd, "fail-finalize", "")
open(errs, "w").close()
elapsed, e = read_fails(h)
print("finalize fails: read failed after %.3fs: %s" % (elapsed, e))
check(e.errnum == errno.ESHUTDOWN, "errno %s, expected ESHUTDOWN" % e.errno)
check(elapsed < 0.2 + FAST, "took %.3fs" % elapsed)
check(logged_calls(fd) == [["open"], ["finalize", "failed"]],
      "calls: %s" % logged_calls(fd))
# The store works again, but the connection stays closed.
os.unlink(errs)
os.unlink(os.path.join(fd, "fail-finalize"))
for what, fn in (("read", lambda: h.pread(4, 0)), ("flush", h.flush),
                 ("write", lambda: h.pwrite(b"x", 0))):
    try:
        fn()
        check(False, "%s succeeded on a closed connection" % what)
    except nbd.Error as e:
        check(e.errnum == errno.ESHUTDOWN, "%s: errno %s" % (what, e.errno))
check(logged_calls(fd) == [["open"], ["finalize", "failed"]],
      "calls after: %s" % logged_calls(fd))
# A new connection is served.
h2 = srv.connect()
check(h2.pread(4, 0) == b"data", "a new connection reads the data")
h2.shutdown()
stop_after_summary(srv, h)
check("finalizing the old plugin context failed" in srv.output(), "log")
print("ok")
