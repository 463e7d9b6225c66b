"""retry-backoff: the bounds.  A read that always fails ends within
retry-deadline (+10%) instead of hanging; retries= bounds the attempts
(the first included);
every delay stays within the exponential ceiling and retry-max-delay; a
permanent errno (ENOSPC) is returned at once with no retry."""

import errno
import re
import time

import nbd

from shardkit_test import VALGRIND, Server, check, stop_after_summary


MiB = 1024 * 1024
SLACK = 1.0 if VALGRIND else 0.10     # fraction of the deadline allowed over


def server(*params, **kw):
    return Server(["--filter=retry-backoff", "--filter=error",
                   "memory", "size=1M"] + list(params), **kw)


def timed_fail(fn):
    t = time.monotonic()
    try:
        fn()
    except nbd.Error as e:
        return time.monotonic() - t, e
    check(False, "request succeeded although every attempt fails")


def retry_lines(out):
    """(op, errno name, retry n, delay in seconds) per retry line."""
    res = []
    for m in re.finditer(r"retry-backoff: (\w+) .*failed: (\w+); retry (\d+) "
                         r"of \d+ in ([0-9.]+)(ms|s)\b", out):
        d = float(m.group(4)) / (1000 if m.group(5) == "ms" else 1)
        res.append((m.group(1), m.group(2), int(m.group(3)), d))
    return res


# 1. error-rate=100%: the read fails, within the deadline plus 10%.  Many
#    retries allowed and short delays, so the deadline is what ends it.
deadline = 2.0
srv = server("error-pread-rate=100%", "error=EIO",
             "retry-deadline=%gs" % deadline, "retries=1000",
             "retry-delay=20ms", "retry-max-delay=200ms")
h = srv.connect()
elapsed, e = timed_fail(lambda: h.pread(4096, 0))
print("always-failing read failed after %.3fs (deadline %gs): %s"
      % (elapsed, deadline, e))
check(e.errnum == errno.EIO, "errno %s, expected EIO" % e.errno)
check(elapsed <= deadline * (1 + SLACK),
      "took %.3fs, more than the deadline %gs + 10%%" % (elapsed, deadline))
# The last attempt is made at the deadline, so it did not give up early.
check(elapsed >= deadline * 0.95,
      "gave up after %.3fs, well before the deadline %gs"
      % (elapsed, deadline))
# Other requests are not affected, and the connection still works.
h.pwrite(b"ok" * 100, 0)
stop_after_summary(srv, h)
out = srv.output()
lines = retry_lines(out)
check(len(lines) >= 10, "only %d retries in %gs" % (len(lines), deadline))
for op, en, n, d in lines:
    check(d <= 0.200 + 1e-9, "delay %.4fs above retry-max-delay" % d)
check(re.search(r"pread offset=0 count=4096: giving up after \d+ attempts",
                out), "no give-up line")
check(re.search(r"connection summary: 1 requests retried, \d+ retries, "
                r"0 recovered, 1 gave up", out), "summary")

# 1b. The deadline counts from the start of the first attempt, also when
#     attempts are slow (300 ms each, by nbdkit's delay filter): the last
#     attempt starts by the deadline, so the read ends by deadline + 300ms.
srv = Server(["--filter=retry-backoff", "--filter=delay", "--filter=error",
              "memory", "size=1M", "delay-read=300ms",
              "error-pread-rate=100%", "retry-deadline=1s", "retries=100",
              "retry-delay=10ms", "retry-max-delay=50ms"])
h = srv.connect()
elapsed, e = timed_fail(lambda: h.pread(4096, 0))
stop_after_summary(srv, h)
print("slow attempts: failed after %.3fs (deadline 1s, 300ms per attempt)"
      % elapsed)
check(1.0 <= elapsed <= 1.3 + (2.0 if VALGRIND else 0.15),
      "slow attempts: %.3fs" % elapsed)

# 2. retries= bounds the attempts, the first included, and the delays
#    follow the exponential ceilings min(max, delay * 2^(n-1)): 10, 20,
#    40, 40 ms.
srv = server("error-pread-rate=100%", "error=EIO", "retries=5",
             "retry-delay=10ms", "retry-max-delay=40ms", "reopen-after=0")
h = srv.connect()
elapsed, e = timed_fail(lambda: h.pread(512, 4096))
stop_after_summary(srv, h)
out = srv.output()
lines = retry_lines(out)
check([n for _, _, n, _ in lines] == [1, 2, 3, 4],
      "retry numbers %s" % [n for _, _, n, _ in lines])
for _, en, n, d in lines:
    check(en == "EIO", "errno %s" % en)
    ceiling = min(0.040, 0.010 * 2 ** (n - 1))
    check(d <= ceiling + 1e-9, "retry %d waited %.4fs > ceiling %.3fs"
          % (n, d, ceiling))
check(len(re.findall(r"injecting EIO error into pread", out)) == 5,
      "expected 5 attempts (retries=5)")
check("giving up after 5 attempts" in out, "give-up line")
check(re.search(r"retry 1 of 4 in", out), "retry line counts 4 retries")
# Measured: the request took the delays it logged (each within its
# ceiling, checked above), plus little more for 5 attempts into memory.
slept = sum(d for *_, d in lines)
check(slept - 0.001 <= elapsed <= slept + (3.0 if VALGRIND else 0.1),
      "4 retries took %.3fs, the delays add up to %.3fs" % (elapsed, slept))
print("retries=5: 5 attempts, delays %s, %.3fs"
      % (["%.1fms" % (d * 1000) for *_, d in lines], elapsed))

# 2a. retry-max-delay measured: one retry per read (retries=2) with a
#     200 ms ceiling, 12 reads.  Each read takes its logged delay and
#     little more (never more than the ceiling plus that), and full jitter
#     spreads the delays: their mean is near 100 ms.
CEIL = 0.200
srv = server("error-pread-rate=100%", "error=EIO", "retries=2",
             "retry-delay=200ms", "retry-max-delay=200ms", "reopen-after=0")
h = srv.connect()
times = [timed_fail(lambda: h.pread(512, 0))[0] for _ in range(12)]
stop_after_summary(srv, h)
ds = [d for *_, d in retry_lines(srv.output())]
check(len(ds) == 12, "%d retries for 12 reads" % len(ds))
over = 3.0 if VALGRIND else 0.05
for t, d in zip(times, ds):
    check(d <= CEIL + 1e-9, "delay %.4fs above retry-max-delay" % d)
    check(d - 0.001 <= t <= d + over,
          "a read took %.3fs for a delay of %.3fs" % (t, d))
    check(t <= CEIL + over, "a read took %.3fs, ceiling %gs" % (t, CEIL))
mean = sum(times) / len(times)
check(0.03 <= mean <= 0.17 + (over if VALGRIND else 0),
      "mean read time %.3fs, expected about 0.1s" % mean)
print("retry-max-delay=200ms: reads took %s (mean %.3fs)"
      % (["%.0fms" % (t * 1000) for t in times], mean))

# 2b. retries=1: one attempt, no retry, and no give-up either (nothing
#     was retried): the filter stays out of the way.
srv = server("error-pread-rate=100%", "error=EIO", "retries=1")
h = srv.connect()
elapsed, e = timed_fail(lambda: h.pread(512, 0))
stop_after_summary(srv, h)
out = srv.output()
check(len(re.findall(r"injecting EIO error into pread", out)) == 1,
      "retries=1: more than one attempt")
check(retry_lines(out) == [] and "giving up" not in out, "retries=1 retried")
check(re.search(r"connection summary: 0 requests retried, 0 retries, "
                r"0 recovered, 0 gave up", out), "retries=1 summary")

# 3. Full jitter: over many retries with the same ceiling, delays spread
#    over the whole [0, ceiling] range (not all at the ceiling).
srv = server("error-pread-rate=100%", "error=EIO", "retries=61",
             "retry-delay=5ms", "retry-max-delay=5ms", "reopen-after=0")
h = srv.connect()
timed_fail(lambda: h.pread(512, 0))
stop_after_summary(srv, h)
ds = [d for *_, d in retry_lines(srv.output())]
check(len(ds) == 60, "%d retries" % len(ds))
check(all(d <= 0.005 + 1e-9 for d in ds), "a delay above the ceiling")
check(min(ds) < 0.0015 and max(ds) > 0.0035,
      "delays not spread over [0, 5ms]: min %.4f max %.4f"
      % (min(ds), max(ds)))

# 4. ENOSPC is permanent: returned at once, one attempt, no retry line,
#    even with a long retry delay configured.
srv = server("error-pwrite-rate=100%", "error=ENOSPC", "retry-delay=5s")
h = srv.connect()
elapsed, e = timed_fail(lambda: h.pwrite(b"x" * 4096, 0))
stop_after_summary(srv, h)
out = srv.output()
print("ENOSPC write failed after %.3fs: %s" % (elapsed, e))
check(e.errnum == errno.ENOSPC, "errno %s, expected ENOSPC" % e.errno)
check(elapsed < (5.0 if VALGRIND else 1.0), "took %.3fs" % elapsed)
check(len(re.findall(r"injecting ENOSPC error into pwrite", out)) == 1,
      "ENOSPC write attempted more than once")
check(retry_lines(out) == [], "a retry was logged for ENOSPC")
check(re.search(r"connection summary: 0 requests retried, 0 retries", out),
      "summary")

# 5. Likewise EPERM and EINVAL (the error filter's other permanent ones).
for name, code in (("EPERM", errno.EPERM), ("EINVAL", errno.EINVAL)):
    srv = server("error-pread-rate=100%", "error=" + name, "retry-delay=5s")
    h = srv.connect()
    elapsed, e = timed_fail(lambda: h.pread(100, 0))
    stop_after_summary(srv, h)
    check(e.errnum == code, "%s: errno %s" % (name, e.errno))
    check(retry_lines(srv.output()) == [], "%s was retried" % name)

# 6. ENOMEM is not transient by default, but retry-on= makes it so.
srv = server("error-pread-rate=100%", "error=ENOMEM", "retries=2",
             "retry-delay=1ms")
h = srv.connect()
timed_fail(lambda: h.pread(100, 0))
stop_after_summary(srv, h)
check(retry_lines(srv.output()) == [], "ENOMEM retried by default")
srv = server("error-pread-rate=100%", "error=ENOMEM", "retries=3",
             "retry-delay=1ms", "retry-on=ENOMEM")
h = srv.connect()
timed_fail(lambda: h.pread(100, 0))
stop_after_summary(srv, h)
check([x[1:3] for x in retry_lines(srv.output())] ==
      [("ENOMEM", 1), ("ENOMEM", 2)], "retry-on=ENOMEM not retried twice")
print("ok")
