"""Hostile or broken ListObjectsV2 answers at the open of a volume:
  - an endless listing (IsTruncated true, the same token forever): the
    open fails in bounded time with an error line, no hang;
  - other volumes' keys under the volume's prefix (vol.x.3.chunk of
    volume "vol.x"): ignored, the volume serves the right data;
  - keys outside the requested prefix or shorter than it (which no
    correct server sends, and which a flipped byte in one of our chunk
    keys makes), a malformed key under the volume's own name
    (PREFIXvol.1w.chunk, PREFIXvol.03.chunk) or a chunk past the
    volume's end, in every answer: the open fails and the log names the
    key; the same key in the first answer only (transient): the page is
    fetched again, the open succeeds and the data is right;
  - a listed size above the chunk size: the open fails naming the key, or
    a read of that chunk is checked against the object itself: EIO or
    the right data, never wrong data;
  - list_exports lists only real volumes (hostile names under the prefix
    are not volumes), fails rather than trusts an answer with keys
    outside the prefix, and does not hang on an endless listing."""

import os

import nbd

from s3_fault_proxy import FaultProxy, in_thread, plugin_args_via
from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check, fail

KiB = 1024
CH = 64 * KiB
NCH = 8
SIZE = NCH * CH
P = "lh/"
LIST = r"list-type=2"

need_s3_object_plugin()
s3 = CephRGW()
proxy = FaultProxy(s3.port, bucket=s3.bucket)
args = plugin_args_via(s3, proxy, P, ["export=vol", "http-retries=1"])

srv = Server(args + ["size=%d" % SIZE, "chunk-size=64K"])
h = srv.connect()
data = bytearray(SIZE)
for c in (0, 2, 4, 7):
    data[c * CH:(c + 1) * CH] = os.urandom(CH)
data = bytes(data)
h.pwrite(data, 0)
h.flush()
h.shutdown()
srv.stop()


def open_and_read(what, expect_open=True, limit=30):
    """Start nbdkit, connect (the open lists the chunks); return the
    server and either the handle or the connect error."""
    s = Server(args)

    def go():
        hh = nbd.NBD()
        hh.set_export_name("vol")
        hh.connect_unix(s.sock)
        return hh
    done, r, secs = in_thread(go, limit)
    if not done:
        fail("%s: the open hangs (> %d s)" % (what, limit))
        return s, RuntimeError("hang")  # (when fail() does not exit)
    print("%s: open %s in %.1f s" % (what, "failed" if isinstance(
        r, Exception) else "succeeded", secs), flush=True)
    if expect_open:
        if isinstance(r, Exception):
            fail("%s: the open failed: %s\n%s" % (what, r,
                                                  s.output()[-2000:]))
        check(r.pread(SIZE, 0) == data, "%s: wrong data" % what)
        r.shutdown()
    s.stop()
    return s, r


# 1. An endless listing.
rule = proxy.add("list", query=LIST, endless=True)
s, r = open_and_read("endless listing", expect_open=False)
check(isinstance(r, Exception), "endless listing: the open succeeded")
check("error" in s.output(), "endless listing: an error line:\n"
      + s.output()[-2000:])
proxy.remove(rule)

# 2. Other volumes' keys under this volume's prefix: ignored.
rule = proxy.add("list", query=LIST, add_keys=[
    ("lh/vol.x.3.chunk", CH), ("lh/vol.meta.5.chunk", CH),
    ("lh/vol.2.meta", 200), ("lh/vol.y.lease", 100)])
open_and_read("other volumes' keys in the listing")
proxy.remove(rule)

# 3. Keys that cannot be in a correct answer, every time / once.
for bad in ("vol.1w.chunk", "vol.%d.chunk" % NCH, "vol.03.chunk",
            "x/vol.1.chunk", "lh/other.3.chunk", "lh/vol2.meta", "lh/vo"):
    if not bad.startswith(("x/", "lh/")):
        bad = P + bad
    rule = proxy.add("list", query=LIST, add_keys=[(bad, CH)])
    s, r = open_and_read("%s in every listing" % bad, expect_open=False)
    check(isinstance(r, Exception), "%s in every listing: the volume "
          "opened" % bad)
    check(bad in s.output(), "%s in every listing: the log names the key:\n"
          "%s" % (bad, s.output()[-2000:]))
    proxy.remove(rule)
    rule = proxy.add("list", query=LIST, add_keys=[(bad, CH)], count=1)
    open_and_read("%s in the first listing only" % bad)
    proxy.remove(rule)

# 4. A listed size above the chunk size.
rule = proxy.add("list", query=LIST, sizes={P + "vol.2.chunk": CH + 1})
s = Server(args)
try:
    hh = s.connect("vol")
except nbd.Error as e:
    check("vol.2.chunk" in s.output(), "size above the chunk size: the "
          "open failed but the log does not name vol.2.chunk")
    print("listed size above the chunk size: open failed (%s)" % e)
else:
    # The listed size is only a hint: the read checks the object itself
    # (its length against its digest and the chunk), so the real, intact
    # object reads right; a wrong byte would be EIO.
    try:
        got = hh.pread(CH, 2 * CH)
        check(got == data[2 * CH:3 * CH], "listed size above the chunk "
              "size: WRONG DATA")
    except nbd.Error as e:
        check(e.errno == "EIO", "oversized chunk: %s" % e)
    check(hh.pread(CH, 4 * CH) == data[4 * CH:5 * CH], "chunk 4 right")
    hh.shutdown()
s.stop()
proxy.remove(rule)

# 5. list_exports with hostile keys, then with an endless listing.
largs = [a for a in args if not a.startswith("export=")]


def list_exports(s):
    names = []

    def go():
        hh = nbd.NBD()
        hh.set_opt_mode(True)
        hh.connect_unix(s.sock)
        try:
            hh.opt_list(lambda name, desc: names.append(name) or 0)
        finally:
            try:
                hh.opt_abort()
            except nbd.Error:
                pass
        return names
    return in_thread(go, 30)


rule = proxy.add("list", query=LIST, add_keys=[
    ("lh/.hidden.meta", 100), ("lh/a b.meta", 100),
    ("lh/sub/x.meta", 100), ("lh/" + "v" * 300 + ".meta", 100),
    ("lh/.meta", 100)])
s = Server(largs)
done, r, secs = list_exports(s)
check(done, "list_exports with hostile keys hangs")
check(r == ["vol"], "list_exports with hostile keys: %r" % (r,))
s.stop()
proxy.remove(rule)
rule = proxy.add("list", query=LIST, add_keys=[("zz/other.meta", 100)])
s = Server(largs)
done, r, secs = list_exports(s)
check(done, "list_exports with a key outside the prefix hangs")
check(isinstance(r, Exception), "list_exports trusted an answer with a key "
      "outside the prefix: %r" % (r,))
check("zz/other.meta" in s.output(), "the log names the key:\n"
      + s.output()[-2000:])
s.stop()
proxy.remove(rule)
rule = proxy.add("list", query=LIST, endless=True)
s = Server(largs)
done, r, secs = list_exports(s)
check(done, "list_exports on an endless listing hangs (> 30 s)")
print("list_exports on an endless listing: %r after %.1f s" % (r, secs))
s.kill()
proxy.remove(rule)
print("PASS")
