"""The open of one volume does not hold up another's: with volume A's
listing delayed 8 s (or endless), a client opening volume B in the same
nbdkit at the same time is connected and reads in well under that."""

import os
import threading
import time

import nbd

from s3_fault_proxy import FaultProxy, in_thread, plugin_args_via
from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check

KiB = 1024
CH = 64 * KiB
SIZE = 4 * CH
P = "iso/"

need_s3_object_plugin()
s3 = CephRGW()
proxy = FaultProxy(s3.port, bucket=s3.bucket)
base = plugin_args_via(s3, proxy, P, ["http-retries=1"])
data = {}
for name in ("A", "B"):
    srv = Server(base + ["export=" + name, "size=%d" % SIZE,
                         "chunk-size=64K"])
    h = srv.connect()
    data[name] = os.urandom(SIZE)
    h.pwrite(data[name], 0)
    h.flush()
    h.shutdown()
    srv.stop()

A_LIST = r"list-type=2.*prefix=iso(%2F|/)A\.|prefix=iso(%2F|/)A\..*list-type=2"
for fault in ({"delay": 8}, {"endless": True}):
    rule = proxy.add("list", query=A_LIST, **fault)
    # Read-only: no lease, so the killed server below leaves none that
    # would refuse the next round's open of B.
    srv = Server(base, readonly=True)

    def open_a():
        h = nbd.NBD()
        h.set_export_name("A")
        h.connect_unix(srv.sock)
        return h
    ta = threading.Thread(target=lambda: in_thread(open_a, 40), daemon=True)
    ta.start()
    time.sleep(0.5)                # A's open is now waiting for its listing
    check(len(proxy.find(query=A_LIST)) >= 1, "A's listing was requested")

    def open_b():
        h = nbd.NBD()
        h.set_export_name("B")
        h.connect_unix(srv.sock)
        ok = h.pread(SIZE, 0) == data["B"]
        h.shutdown()
        return ok
    done, r, secs = in_thread(open_b, 30)
    print("%s on A's listing: B opened and read in %.1f s (%r)"
          % (fault, secs, r), flush=True)
    check(done and r is True, "B: %r" % (r,))
    check(secs < 3, "B waited %.1f s for A's listing (%s)" % (secs, fault))
    srv.kill()
    ta.join(15)
    proxy.remove(rule)
print("PASS")
