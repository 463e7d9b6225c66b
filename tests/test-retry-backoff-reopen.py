"""retry-backoff: opening the plugin at connect time is retried; after
reopen-after= consecutive failures the filter really reopens the plugin
(a new plugin handle, seen in the plugin's own log and in the debug log),
which cures a connection whose state went bad; a failed reopen counts as
a failed attempt; reopen-after=0 never reopens.  The plugin is
test-retry-backoff-flaky.sh under nbdkit's sh plugin."""

import errno
import re

import nbd

from shardkit_test import (Server, check, logged_calls, flaky_server,
                           put_state, retry_summary, stop_after_summary,
                           tmpdir)

SIZE = 65536


def flaky(*params, state=None):
    return flaky_server(["retry-delay=2ms", "retry-max-delay=20ms"] +
                        list(params), bytes(range(256)) * (SIZE // 256),
                        state=state)


# 1. Open at connect time: the first two opens fail, the third succeeds.
d = tmpdir("shardkit-flaky-")
put_state(d, "fail-open", 2)
srv, d = flaky(state=d)
h = srv.connect()
check(h.pread(4, 0) == b"\x00\x01\x02\x03", "read after open retries")
stop_after_summary(srv, h)
opens = [c for c in logged_calls(d) if c[0] == "open"]
check(len(opens) == 3, "plugin opened %d times, expected 3" % len(opens))
out = srv.output()
check(len(re.findall(r'retry-backoff: open exportname="" failed: EIO; '
                     r'retry \d of 7', out)) == 2, "two open retry lines")
print("open: 2 failures retried, connected on the 3rd open")

# 2. The connection's plugin state goes bad (every request on handle h1
#    fails): after reopen-after=3 consecutive failures the filter opens
#    handle h2, and the write goes through, read-write.
srv, d = flaky("reopen-after=3")
h = srv.connect()
put_state(d, "bad-h1", 1)
h.pwrite(b"after-reopen", 1000, nbd.CMD_FLAG_FUA)
check(h.pread(12, 1000) == b"after-reopen", "data after reopen")
stop_after_summary(srv, h)
calls = logged_calls(d)
writes = [c[1] for c in calls if c[0] == "pwrite"]
check(writes == ["h1", "h1", "h1", "h2"],
      "pwrite attempts by handle: %s" % writes)
check(["open", "h2", "readonly=false"] in calls, "h2 not opened read-write")
check(["close", "h1"] in calls, "the bad handle h1 was not closed")
out = srv.output()
check(re.search(r"retry-backoff: reopening the plugin context "
                r"\(3 consecutive failures, readonly=0\)", out),
      "no reopen line in the debug log")
s = retry_summary(out)
check(s == (1, 3, 1, 0, 1, 0), "summary %s" % (s,))
print("reopen-after=3: 3 failures on h1, reopened as h2, recovered")

# 3. A failed reopen counts as a failed attempt: reopen-after=1, the bad
#    handle h1 and two failing opens (h2, h3); h4 serves the read.
srv, d = flaky("reopen-after=1", "retries=5")
h = srv.connect()
put_state(d, "bad-h1", 1)
put_state(d, "fail-open", 2)
check(h.pread(3, 10) == b"\x0a\x0b\x0c", "read after failed reopens")
stop_after_summary(srv, h)
calls = logged_calls(d)
check([c[1] for c in calls if c[0] == "pread"] == ["h1", "h4"],
      "pread attempts: %s" % [c for c in calls if c[0] == "pread"])
s = retry_summary(srv.output())
check(s == (1, 3, 1, 0, 3, 2), "summary %s" % (s,))
check(len(re.findall(r"reopening the plugin context failed",
                     srv.output())) == 2, "two failed reopens logged")
print("failed reopens: h2 and h3 failed to open, counted as attempts; "
      "h4 served")

# 4. The retries budget includes failed reopens: with retries=3 the same
#    situation gives up with the reopen's error after 3 attempts.
srv, d = flaky("reopen-after=1", "retries=3")
h = srv.connect()
put_state(d, "bad-h1", 1)
put_state(d, "fail-open", 5)
try:
    h.pread(3, 10)
    check(False, "read succeeded although every reopen fails")
except nbd.Error as e:
    check(e.errnum in (errno.EIO, errno.ESHUTDOWN), "errno %s" % e.errno)
stop_after_summary(srv, h)
check(retry_summary(srv.output())[3] == 1, "no give-up")
check(len([c for c in logged_calls(d) if c[0] == "open"]) == 3,
      "opens: initial + 2 failed reopens")

# 5. reopen-after=0 never reopens: the bad handle fails retries=5 times.
srv, d = flaky("reopen-after=0", "retries=5")
h = srv.connect()
put_state(d, "bad-h1", 1)
try:
    h.pread(3, 10)
    check(False, "read on a bad handle succeeded")
except nbd.Error:
    pass
stop_after_summary(srv, h)
calls = logged_calls(d)
check([c[1] for c in calls if c[0] == "pread"] == ["h1"] * 5,
      "reopen-after=0: %s" % [c for c in calls if c[0] == "pread"])
check(len([c for c in calls if c[0] == "open"]) == 1,
      "reopen-after=0 reopened")
check("reopening" not in srv.output(), "reopen logged")

# 6. With nbdkit's error filter below: an always-failing read reopens the
#    whole stack below (the error filter and memory are opened again).
srv = Server(["--filter=retry-backoff", "--filter=error", "memory",
              "size=1M", "error-pread-rate=100%", "reopen-after=2",
              "retries=5", "retry-delay=1ms"])
h = srv.connect()
try:
    h.pread(512, 0)
    check(False, "read succeeded at error-rate 100%")
except nbd.Error:
    pass
stop_after_summary(srv, h)
out = srv.output()
check(len(re.findall(r"debug: memory: open readonly=0", out)) == 3,
      "memory opened %d times, expected 3 (initial + 2 reopens)"
      % len(re.findall(r"debug: memory: open readonly=0", out)))
s = retry_summary(out)
check(s[4:] == (2, 0), "summary %s" % (s,))
print("ok")
