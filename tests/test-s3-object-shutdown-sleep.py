"""s3-object's retry sleeps end at nbdkit shutdown: the server answers
503 SlowDown to everything once the volume is open, http-retries=20, a
client read is in flight; on SIGTERM the read ends (with an error)
within 5 s instead of sleeping through its retries, and nbdkit exits as
soon as the client leaves."""

import os
import signal
import time

import nbd

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
# The request in flight ends at once: its backoff sleep ends at shutdown
# (before, it went on through up to 20 sleeps of up to 3 s).
err = None
while time.monotonic() - t0 < 15:
    h.poll(100)
    try:
        if h.aio_command_completed(cookie):
            break
    except nbd.Error as e:
        err = e
        break
secs = time.monotonic() - t0
print("SIGTERM during backoff: the read ended after %.1f s (%s; %d answers "
      "503 before)" % (secs, err, n503), flush=True)
check(secs <= 5, "the request in flight took %.1f s (> 5 s) to end after "
      "SIGTERM while backing off:\n%s" % (secs, srv.output()[-3000:]))
check(err is not None, "the read succeeded although every answer was 503")
check("shutting down" in srv.output(), "the log says why:\n"
      + srv.output()[-3000:])
# nbdkit 1.32 waits for connected clients to leave: leave, then it exits.
try:
    h.shutdown()
except nbd.Error:
    pass
t1 = time.monotonic()
try:
    srv.proc.wait(15)
except Exception:
    pass
check(srv.proc.poll() is not None, "nbdkit still running %.1f s after the "
      "client left" % (time.monotonic() - t1))
print("PASS")
