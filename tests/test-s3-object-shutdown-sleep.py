"""nbdkit exits promptly on SIGTERM while the plugin is backing off: the
server answers 503 SlowDown to everything once the volume is open,
http-retries=20, a client read is in flight; SIGTERM: nbdkit is gone
within 5 s (backoff sleeps end at shutdown)."""

import os
import signal
import time

from s3_fault_proxy import FaultProxy, plugin_args_via
from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check

KiB = 1024
CH = 64 * KiB

need_s3_object_plugin()
s3 = CephRGW()
proxy = FaultProxy(s3.port, bucket=s3.bucket)
srv = Server(plugin_args_via(s3, proxy, "sd/", [
    "export=vol", "size=%d" % (4 * CH), "chunk-size=64K", "http-retries=20"]))
h = srv.connect()
h.pwrite(os.urandom(4 * CH), 0)
h.flush()
proxy.add("slowdown")
buf = bytearray(CH)
cookie = h.aio_pread(buf, CH)
time.sleep(1.5)                        # the plugin is now in its retries
n503 = len([r for r in proxy.requests if r.status == 503])
check(n503 >= 1, "the read reached the server (503s: %d)" % n503)
t0 = time.monotonic()
srv.proc.send_signal(signal.SIGTERM)
try:
    srv.proc.wait(15)
except Exception:
    pass
secs = time.monotonic() - t0
print("SIGTERM during backoff: nbdkit %s after %.1f s (%d answers 503)"
      % ("exited" if srv.proc.poll() is not None else "still running", secs,
         n503), flush=True)
check(srv.proc.poll() is not None and secs <= 5,
      "nbdkit took %.1f s (> 5 s) to exit on SIGTERM while backing off" % secs)
print("PASS")
