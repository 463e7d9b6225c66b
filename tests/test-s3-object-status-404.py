"""A chunk the volume holds whose GET is answered 404 NoSuchKey (a status
that lies) is an error, never zeros: reads fail with EIO and the log names
the chunk's key; a 4 KiB write into that chunk (read-modify-write) fails
with EIO and leaves the stored object unchanged; once the server answers
truthfully again the data reads back intact.  (DESIGN.md, "Integrity in
the object store": a chunk the volume holds that answers "not found" is
an error.)"""

import os

from s3_fault_proxy import FaultProxy, expect_nbd_error, plugin_args_via
from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check

KiB = 1024
CH = 64 * KiB
SIZE = 8 * CH

need_s3_object_plugin()
s3 = CephRGW()
proxy = FaultProxy(s3.port, bucket=s3.bucket)
srv = Server(plugin_args_via(s3, proxy, "s404/", [
    "export=vol", "size=%d" % SIZE, "chunk-size=64K"]))
h = srv.connect()
data = os.urandom(SIZE)
h.pwrite(data, 0)
h.flush()
key = "s404/vol.1.chunk"
check(s3.exists(key), "chunk 1 stored as %s: %s" % (key, s3.keys()))
stored = s3.get(key)

rule = proxy.add("status", method="GET", key=r"vol\.1\.chunk$", status=404,
                 code="NoSuchKey", message="The specified key does not "
                 "exist.")
expect_nbd_error(lambda: h.pread(CH, CH), what="whole-chunk read of a "
                 "chunk answered 404")
expect_nbd_error(lambda: h.pread(4 * KiB, CH + 8 * KiB),
                 what="4 KiB read of a chunk answered 404")
expect_nbd_error(lambda: h.pread(2 * CH, CH // 2),
                 what="read across chunks 0-2 with chunk 1 answered 404")
check(rule.fired >= 3, "the proxy answered 404 (%d times)" % rule.fired)
check("vol.1.chunk" in srv.output(), "the log names the chunk's key "
      "vol.1.chunk:\n" + srv.output()[-3000:])

# A 4 KiB write into the chunk needs its current bytes: it must fail, not
# write the 4 KiB over zeros.
expect_nbd_error(lambda: h.pwrite(b"\xaa" * (4 * KiB), CH + 4 * KiB),
                 what="4 KiB write into a chunk answered 404")
check(s3.get(key) == stored, "the stored object changed after a failed "
      "read-modify-write (written over zeros?)")

proxy.remove(rule)
check(h.pread(SIZE, 0) == data, "data intact once the fault is removed")
check(s3.get(key) == stored, "stored object intact")
h.shutdown()
srv.stop()
print("PASS")
