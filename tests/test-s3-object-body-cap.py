"""Answers with no end do not exhaust nbdkit's memory or hang it: a .meta
GET answered with an endless 200 body (no Content-Length, or a huge one)
makes nbdkit refuse to start with an error in bounded time, and its RSS
stays under 256 MiB; an endless ListObjectsV2 page body makes the open
fail, memory bounded likewise."""

import os
import subprocess
import time

import nbd

from s3_fault_proxy import FaultProxy, in_thread, plugin_args_via
from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import (NBDKIT, VALGRIND, Server, check, on_exit,
                           tmpdir)

MiB = 1024 * 1024
# Under valgrind nbdkit's RSS includes valgrind's own (about 250 MiB at
# start): the bound is then on growth, still far below what an endless
# body reaches without a cap (gigabytes in seconds).
RSS_MAX = (1024 if VALGRIND else 256) * MiB
LIMIT = 30

need_s3_object_plugin()
s3 = CephRGW()
proxy = FaultProxy(s3.port, bucket=s3.bucket)
args = plugin_args_via(s3, proxy, "cap/", ["export=vol", "http-retries=1"])
srv = Server(args + ["size=1M", "chunk-size=64K"])
# Only creates the volume.  Stopped at once after start-up, nbdkit 1.32
# itself can race its own exit under valgrind (an invalid read with
# every frame in /usr/bin/nbdkit): our code is checked by the rest.
srv.stop(check_exit=not VALGRIND)


def rss(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


for what, cl in (("no Content-Length", None), ("Content-Length 1 TiB",
                                                1 << 40)):
    rule = proxy.add("endless", method="GET", key=r"vol\.meta$",
                     content_length=cl, prefix_bytes=b"# shardkit volume "
                     b"metadata\nformat=shardkit-volume\n", fill=b"x=y\n")
    d = tmpdir()
    p = subprocess.Popen([NBDKIT, "-f", "-U", os.path.join(d, "s")] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    on_exit(lambda p=p: p.poll() is None and p.kill())
    t0 = time.monotonic()
    peak = 0
    while p.poll() is None and time.monotonic() - t0 < LIMIT:
        peak = max(peak, rss(p.pid))
        if peak > RSS_MAX:
            break
        time.sleep(0.05)
    running = p.poll() is None
    if running:
        p.kill()
    out = p.communicate()[0].decode("utf-8", "replace")
    secs = time.monotonic() - t0
    print(".meta endless (%s): %s after %.1f s, peak RSS %d MiB"
          % (what, "still running" if running else "exit %d" % p.returncode,
             secs, peak // MiB), flush=True)
    check(peak <= RSS_MAX, ".meta endless (%s): RSS reached %d MiB"
          % (what, peak // MiB))
    check(not running, ".meta endless (%s): nbdkit still running, killed "
          "after %.1f s" % (what, secs))
    check(p.returncode != 0, ".meta endless (%s): nbdkit exited 0" % what)
    check("error" in out, ".meta endless (%s): no error line:\n%s"
          % (what, out[-2000:]))
    proxy.remove(rule)

# An endless listing page.
rule = proxy.add("endless", query=r"list-type=2",
                 prefix_bytes=b'<?xml version="1.0" encoding="UTF-8"?>\n'
                 b'<ListBucketResult><Name>shardkit</Name>',
                 fill=b"<Contents><Key>cap/vol.1.chunk</Key><Size>1"
                 b"</Size></Contents>")
s = Server(args)


def go():
    h = nbd.NBD()
    h.set_export_name("vol")
    h.connect_unix(s.sock)
    return h


done = {}
import threading                                    # noqa: E402
t = threading.Thread(target=lambda: done.update(r=in_thread(go, LIMIT)),
                     daemon=True)
t.start()
peak = 0
t0 = time.monotonic()
while t.is_alive() and peak <= RSS_MAX:
    peak = max(peak, rss(s.proc.pid))
    time.sleep(0.05)
t.join(1)
secs = time.monotonic() - t0
print("endless listing body: open %s after %.1f s, peak RSS %d MiB"
      % (done.get("r", (0, "still going"))[1], secs, peak // MiB), flush=True)
check(peak <= RSS_MAX, "endless listing body: RSS reached %d MiB"
      % (peak // MiB))
finished, r, _ = done.get("r", (False, None, 0))
check(finished, "endless listing body: the open hangs")
check(isinstance(r, Exception), "endless listing body: the open succeeded")
s.kill()
proxy.remove(rule)
print("PASS")
