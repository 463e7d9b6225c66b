"""A whole-chunk PUT that the server stored but whose answer never came
(the connection cut after the server answered, on every attempt) fails
the write; the volume must not forget that the object may be there: a
later trim of that chunk removes it, and after a restart the chunk reads
as zeros (neither the failed write's bytes nor the old bytes come back)
and its object is gone from the bucket.  Chunk 3 was absent before the
failed write, chunk 5 held older bytes."""

import os

import nbd

from s3_fault_proxy import FaultProxy, expect_nbd_error, plugin_args_via
from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check

KiB = 1024
CH = 64 * KiB
SIZE = 8 * CH
ZERO = bytes(CH)

need_s3_object_plugin()
s3 = CephRGW()
proxy = FaultProxy(s3.port, bucket=s3.bucket)
args = plugin_args_via(s3, proxy, "land/", [
    "export=vol", "size=%d" % SIZE, "chunk-size=64K", "http-retries=2",
    "timeout=10"])
srv = Server(args)
h = srv.connect()
old5 = os.urandom(CH)
h.pwrite(old5, 5 * CH, nbd.CMD_FLAG_FUA)
h.pwrite(os.urandom(CH), 0, nbd.CMD_FLAG_FUA)

for c in (3, 5):
    key = "land/vol.%d.chunk" % c
    rule = proxy.add("cut", method="PUT", key=r"vol\.%d\.chunk$" % c)
    new = os.urandom(CH)
    expect_nbd_error(lambda: h.pwrite(new, c * CH, nbd.CMD_FLAG_FUA),
                     errnos=None, what="write whose PUT answer is lost")
    check(rule.fired >= 1, "the proxy cut the PUT's answer")
    proxy.remove(rule)
    print("chunk %d: PUT stored, answer cut %d time(s); the write failed"
          % (c, rule.fired), flush=True)
    check(s3.exists(key) and s3.get(key) == new,
          "the server stored the PUT that was cut (chunk %d)" % c)
    h.trim(CH, c * CH)               # must succeed and remove the object
    check(h.pread(CH, c * CH) == ZERO, "chunk %d reads as zeros after "
          "the trim" % c)

h.shutdown()
srv.stop()

srv = Server(args)
h = srv.connect()
for c in (3, 5):
    got = h.pread(CH, c * CH)
    check(got == ZERO, "after a restart, trimmed chunk %d reads %s" %
          (c, "the failed write's bytes" if got != old5 else "old bytes"))
    check(not s3.exists("land/vol.%d.chunk" % c),
          "chunk %d's object is still in the bucket after the trim" % c)
h.shutdown()
srv.stop()
print("PASS")
