"""retry-backoff: a retried request is the very same request.  Writes,
zeroes and trims are repeated with the same offset, count, data and flags
(FUA kept), as the plugin sees them; flush, extents and cache are retried
too.  Also across a reopen: the attempt on the new plugin handle carries
the same data and flags.  The plugin is test-retry-backoff-flaky.sh under
nbdkit's sh plugin, which logs every call it gets."""

import os
import re

import nbd

from shardkit_test import (check, flaky_server, retry_summary,
                           stop_after_summary)

SIZE = 65536

srv, d = flaky_server(["retry-delay=2ms", "reopen-after=0"], b"\xaa" * SIZE)
disk = os.path.join(d, "disk")
h = srv.connect()


def fail_next(method, n):
    with open(os.path.join(d, "fail-" + method), "w") as f:
        f.write(str(n))


def calls(method):
    with open(os.path.join(d, "log")) as f:
        return [l.split()[1:] for l in f if l.split()[0] == method]


def disk_bytes(off, n):
    with open(disk, "rb") as f:
        f.seek(off)
        return f.read(n)


# pwrite with FUA, failing twice: three identical calls, FUA on each.
data = os.urandom(3000)
fail_next("pwrite", 2)
h.pwrite(data, 1001, nbd.CMD_FLAG_FUA)
w = calls("pwrite")
check(len(w) == 3, "pwrite reached the plugin %d times, expected 3" % len(w))
check(all(c == w[0] for c in w), "the attempts differ: %s" % w)
check(w[0][1:4] == ["3000", "1001", "fua"], "pwrite call %s" % w[0])
check(disk_bytes(1001, 3000) == data, "data on disk")
print("pwrite: 3 identical attempts", w[0])

# pwrite without FUA stays without FUA.
fail_next("pwrite", 1)
h.pwrite(b"z" * 10, 0)
w = calls("pwrite")[3:]
check([c[1:4] for c in w] == [["10", "0", "-"]] * 2, "no-FUA pwrite %s" % w)

# zero with FUA (and may_trim, which nbdkit adds without NO_HOLE).
fail_next("zero", 2)
h.zero(5000, 20000, nbd.CMD_FLAG_FUA)
z = calls("zero")
check(len(z) == 3 and all(c == z[0] for c in z), "zero attempts %s" % z)
check(z[0][1:3] == ["5000", "20000"] and "fua" in z[0][3].split(","),
      "zero call %s" % z[0])
check(disk_bytes(20000, 5000) == bytes(5000), "zeroed on disk")

# trim with FUA.
fail_next("trim", 1)
h.trim(4096, 40960, nbd.CMD_FLAG_FUA)
t = calls("trim")
check(len(t) == 2 and t[0] == t[1] and t[0][1:] == ["4096", "40960", "fua"],
      "trim attempts %s" % t)

# flush, extents and cache.
fail_next("flush", 3)
h.flush()
check(len(calls("flush")) == 4, "flush attempts %d" % len(calls("flush")))

fail_next("extents", 2)
ext = []
h.block_status(8192, 0, lambda m, o, e, err: ext.extend(e) or 0)
check(len(calls("extents")) == 3, "extents attempts")
# Only the successful attempt's extents reach the client, once.
check(ext[:2] == [8192, 0], "extents %s" % ext)

fail_next("cache", 1)
h.cache(4096, 0)
check(len(calls("cache")) == 2, "cache attempts")

# And a read.
fail_next("pread", 2)
check(h.pread(3000, 1001) == data, "read after retries")
check(len(calls("pread")) == 3, "pread attempts")

stop_after_summary(srv, h)
out = srv.output()
check(re.search(r"retry-backoff: flush failed: EIO; retry 3 of 7 in", out),
      "flush retry lines")
check(re.search(r"retry-backoff: extents offset=0 count=8192 failed: EIO; "
                r"retry 2 of 7", out), "extents retry lines")
s = retry_summary(out)
check(s[:4] == (8, 14, 8, 0), "summary %s" % (s,))

# Across reopens: reopen-after=1, and each request meets a bad handle, so
# its second attempt goes to a freshly opened one.
srv, d = flaky_server(["retry-delay=2ms", "reopen-after=1"], b"\xaa" * SIZE)
disk = os.path.join(d, "disk")
h = srv.connect()


def bad(handle):
    open(os.path.join(d, "bad-" + handle), "w").close()


def across(method, expect):
    """The two attempts of METHOD: on h(n), then the same on h(n+1)."""
    c = calls(method)
    check(len(c) == 2, "%s attempts %s" % (method, c))
    check(c[0][0] != c[1][0], "%s: no reopen between attempts %s"
          % (method, c))
    check(c[0][1:] == c[1][1:], "%s: the attempts differ: %s" % (method, c))
    check(c[0][1:4] == expect, "%s call %s" % (method, c[0]))
    return c


bad("h1")
data = os.urandom(3000)
h.pwrite(data, 1001, nbd.CMD_FLAG_FUA)
w = across("pwrite", ["3000", "1001", "fua"])
check(disk_bytes(1001, 3000) == data, "data on disk after a reopen")
bad(w[1][0])
h.trim(4096, 40960, nbd.CMD_FLAG_FUA)
t = across("trim", ["4096", "40960", "fua"])
bad(t[1][0])
h.zero(5000, 20000, nbd.CMD_FLAG_FUA | nbd.CMD_FLAG_NO_HOLE)
z = across("zero", ["5000", "20000", "fua"])
check(disk_bytes(20000, 5000) == bytes(5000), "zeroed after a reopen")
bad(z[1][0])
check(h.pread(3000, 1001) == data, "read after a reopen")
with open(os.path.join(d, "log")) as f:
    opens = [l.split()[1] for l in f if l.startswith("open ")]
check(opens == ["h1", "h2", "h3", "h4", "h5"], "opens %s" % opens)
print("across reopens: pwrite %s, trim %s, zero %s" % (w, t, z))
h.shutdown()
srv.stop()
print("ok")
