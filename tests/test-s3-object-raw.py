"""s3-object raw layout (key=), against Ceph's gateway: one object
uploaded by another S3 client (boto3 here), of an odd size, served
read-only with its size from HEAD and ranged GETs; reads anywhere
(unaligned, across the end of a 4 MiB block, the last byte) return the
object's bytes; writes, trims and zeros are refused and leave the object
alone; a missing key is a clean error."""

import hashlib
import os

import nbd

from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check, fail, start_fails

KiB = 1024
MiB = 1024 * KiB
SIZE = 5 * MiB + 12345

need_s3_object_plugin()
s3 = CephRGW()
data = os.urandom(SIZE)
s3.put("images/disk.raw", data)
etag = s3.head("images/disk.raw")["ETag"]
base = ["s3-object"] + s3.plugin_args()


def serve(readonly):
    srv = Server(base + ["key=images/disk.raw"], readonly=readonly)
    h = srv.connect()
    check(h.get_size() == SIZE, "size from HEAD: %d" % h.get_size())
    for off, n in ((0, 1), (0, 512), (1, 4096), (MiB - 7, 70000),
                   (4 * MiB - 100, 200), (SIZE - 1, 1), (SIZE - 5000, 5000),
                   (123457, MiB + 3)):
        check(h.pread(n, off) == data[off:off + n], "read [%d,+%d)" % (off, n))
    got = hashlib.sha256()
    for off in range(0, SIZE, 4 * MiB):
        got.update(h.pread(min(4 * MiB, SIZE - off), off))
    check(got.digest() == hashlib.sha256(data).digest(), "whole object")
    try:
        h.pread(2, SIZE - 1)
        fail("read past the end succeeded")
    except nbd.Error:
        pass
    return srv, h


# With nbdkit -r, and without: the raw layout is read-only either way.
srv, h = serve(readonly=True)
check(h.is_read_only(), "read-only with -r")
h.shutdown()
srv.stop()

srv, h = serve(readonly=False)
check(h.is_read_only() or not h.can_trim(),
      "raw layout advertised read-only")
for what, fn in (("write", lambda: h.pwrite(b"X" * 512, 0)),
                 ("trim", lambda: h.trim(MiB, 0)),
                 ("zero", lambda: h.zero(MiB, 0))):
    try:
        fn()
        fail("raw layout: %s succeeded" % what)
    except nbd.Error as e:
        check(e.errno in ("EROFS", "EPERM", "EINVAL", "ENOTSUP"),
              "%s refused with %s" % (what, e.errno))
check(h.pread(512, 0) == data[:512], "still serving after refused writes")
h.shutdown()
srv.stop()
check(s3.head("images/disk.raw")["ETag"] == etag and
      s3.keys() == ["images/disk.raw"], "object untouched, nothing added")

# The same object through a prefix (key= is relative to prefix= if the
# plugin says so; either way a wrong key must be a clean error).
out = start_fails(base + ["key=images/no-such.raw"])
check("NoSuchKey" in out or "404" in out or "not found" in out.lower(),
      "missing key is a clean error:\n" + out)
check("no-such.raw" in out, "the error names the key:\n" + out)
# An empty object: size 0 is served (or refused cleanly), never a crash.
s3.put("images/empty", b"")
try:
    srv = Server(base + ["key=images/empty"])
    h = srv.connect()
    check(h.get_size() == 0, "empty object has size 0")
    h.shutdown()
    srv.stop()
except RuntimeError as e:
    check("empty" in str(e), "empty object refused cleanly: %s" % e)
print("ok")
