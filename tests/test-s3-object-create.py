"""Creating a volume is create-once:
  - two nbdkit servers started at once with export=new size=... end with
    one .meta; every uuid either logs is the stored one; the creating PUT
    carries If-None-Match: *; what each wrote is readable by a third;
  - a .meta GET answered 404 for an existing volume that has chunks, with
    size= given: nbdkit refuses to start (the PUT of a new .meta must not
    replace the existing one), the .meta and the chunks are unchanged."""

import os
import re

from s3_fault_proxy import FaultProxy, plugin_args_via
from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check, start_fails

KiB = 1024
CH = 64 * KiB
SIZE = 8 * CH
P = "cr/"

need_s3_object_plugin()
s3 = CephRGW()
proxy = FaultProxy(s3.port, bucket=s3.bucket)
base = plugin_args_via(s3, proxy, P, ["http-retries=1"])
create = base + ["export=new", "size=%d" % SIZE, "chunk-size=64K"]

# 1. Two creators at once.
a = Server(create, wait=False)
b = Server(create, wait=False)
a.wait_ready()
b.wait_ready()
check(s3.keys(P) == [P + "new.meta"], "one .meta: %s" % s3.keys(P))
meta = s3.get(P + "new.meta")
uuid = re.search(rb"^uuid=(\S+)$", meta, re.M).group(1).decode()
puts = proxy.find(method="PUT", key=r"new\.meta$")
print("%d PUT(s) of new.meta: %s" % (len(puts), [r.headers.get(
    "if-none-match") for r in puts]), flush=True)
check(len(puts) >= 1, "a PUT of new.meta was sent")
for r in puts:
    check(r.headers.get("if-none-match") == "*", "the creating PUT carries "
          "If-None-Match: * (headers %s)" % sorted(r.headers))
da, db = os.urandom(CH), os.urandom(CH)
# One writer at a time (the volume's lease): each writes, then stops,
# which releases the lease for the next.
for srv, c, d in ((a, 1, da), (b, 5, db)):
    h = srv.connect()
    h.pwrite(d, c * CH)
    h.flush()
    h.shutdown()
    srv.stop()
for srv in (a, b):
    for u in re.findall(r"uuid[= ]([0-9a-f-]{36})", srv.output()):
        check(u == uuid, "a server logged uuid %s, the stored one is %s"
              % (u, uuid))
check(s3.get(P + "new.meta") == meta, "the .meta changed after creation")
c3 = Server(base + ["export=new"])
h = c3.connect()
check(h.pread(CH, CH) == da and h.pread(CH, 5 * CH) == db,
      "what both servers wrote is readable by a third")
h.shutdown()
c3.stop()

# 2. A .meta GET answered 404 for a volume that exists and has chunks.
srv = Server(base + ["export=old", "size=%d" % SIZE, "chunk-size=64K"])
h = srv.connect()
data = os.urandom(SIZE)
h.pwrite(data, 0)
h.flush()
h.shutdown()
srv.stop()
old_meta = s3.get(P + "old.meta")
chunks = {k: s3.get(k) for k in s3.keys(P + "old.")
          if k.endswith(".chunk")}
check(len(chunks) == 8, "8 chunks stored: %s" % sorted(chunks))
rule = proxy.add("status", method="GET", key=r"old\.meta$", status=404,
                 code="NoSuchKey")
out = start_fails(base + ["export=old", "size=%d" % (2 * SIZE),
                          "chunk-size=64K"], timeout=15)
check("old" in out, "the error names the volume:\n" + out[-2000:])
proxy.remove(rule)
check(s3.get(P + "old.meta") == old_meta, "the existing .meta was "
      "overwritten")
for k, v in chunks.items():
    check(s3.get(k) == v, "%s changed" % k)
print("PASS")
