"""s3-object's HTTP connections against Ceph's RADOS Gateway: with
connections=N the plugin keeps at most N connections to the server and
reuses them (keep-alive) across hundreds of requests instead of opening
new ones, and one NBD read spanning many chunks has several of its chunk
GETs in flight at once (bounded by N) -- counted from the gateway's
access log of concurrent requests via the sockets open to it."""

import os
import re
import threading
import time

from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check

MiB = 1024 * 1024
need_s3_object_plugin()
s3 = CephRGW()
port = int(s3.endpoint.rsplit(":", 1)[1])
N = 8
srv = Server(["s3-object"] + s3.plugin_args(prefix="c/") +
             ["export=v", "size=64M", "connections=%d" % N])
nbdkit_pid = srv.proc.pid


def client_sockets():
    """TCP connections from nbdkit to the gateway, by state: sockets owned
    by the nbdkit process (ESTABLISHED) and client-side TIME-WAITs (left
    by connections the client closed)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % nbdkit_pid
    for fd in os.listdir(fd_dir):
        try:
            m = re.match(r"socket:\[(\d+)\]", os.readlink(os.path.join(fd_dir, fd)))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    owned = time_wait = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            remote_port = int(p[2].split(":")[1], 16)
            if remote_port != port:
                continue
            if p[9] in inodes and p[3] == "01":      # ESTABLISHED
                owned += 1
            elif p[3] == "06":                        # TIME_WAIT
                time_wait += 1
    return owned, time_wait


h = srv.connect()
data = os.urandom(4 * MiB)
for n in range(12):
    h.pwrite(data, n * 4 * MiB)
owned, tw0 = client_sockets()
check(owned <= N, "at most connections=%d sockets: %d" % (N, owned))

# Sample the sockets while a read of 12 chunks (one NBD request) runs:
# its GETs overlap, so more than one connection is busy, never more than N.
peak = [0]
stop = threading.Event()


def sampler():
    while not stop.is_set():
        peak[0] = max(peak[0], client_sockets()[0])
        time.sleep(0.002)


t = threading.Thread(target=sampler)
t.start()
for _ in range(5):
    check(h.pread(12 * 4 * MiB, 0) == data * 12, "12-chunk read")
stop.set()
t.join()
check(1 < peak[0] <= N, "a 12-chunk read used 2..%d connections at once: %d"
      % (N, peak[0]))

# Hundreds of small reads (ranged GETs) from several connections.
handles = [srv.connect() for _ in range(4)]
for i in range(400):
    hh = handles[i % 4]
    off = (i * 7919 * 4096) % (48 * MiB)
    check(hh.pread(4096, off) == (data * 12)[off:off + 4096], "small read")
owned, tw1 = client_sockets()
check(owned <= N, "still at most %d sockets: %d" % (N, owned))
# Closed connections would be TIME-WAITs on the client side; allow a few
# (a gateway may close an idle one) but not one per request.
check(tw1 - tw0 <= 2 * N, "connections reused: %d new TIME-WAITs over 460 "
      "requests" % (tw1 - tw0))
for hh in handles + [h]:
    hh.shutdown()
srv.stop()
print("ok: peak %d connections, %d closed" % (peak[0], tw1 - tw0))
