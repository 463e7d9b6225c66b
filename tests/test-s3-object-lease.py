"""s3-object against Ceph's gateway: one writer per volume (the lease
object PREFIX/NAME.lease).  A second read-write server is refused with an
error naming the holder; read-only servers work beside the writer; a
clean stop releases the lease so that the next server starts at once; a
holder killed with SIGKILL is taken over once its lease has ended, not
before; a holder stopped (SIGSTOP) past its lease is taken over, and when
it continues its writes fail with EIO and none of them lands; lease-wait=
waits for an expired or released lease; a writer whose renewals fail
while the gateway is down refuses writes past its deadline and resumes
once a renewal gets through.

Short leases (lease-time=5) keep it quick; not the minimum of 3, so that
a renewal slowed down by a loaded machine does not fence a writer that
the test expects to write.  Budget: about 20 s plus the gateway's start."""

import os
import re
import signal
import threading
import time

import nbd

from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check, fail, start_fails

MiB = 1024 * 1024
need_s3_object_plugin()
START = time.monotonic()


def step(what):
    print("%6.1f s  %s" % (time.monotonic() - START, what), flush=True)


s3 = CephRGW()
step("gateway up")
PREFIX = "leases/"
LEASE_KEY = PREFIX + "vol.lease"
base = ["s3-object"] + s3.plugin_args(prefix=PREFIX) + ["export=vol"]
# 4 chunks of 64K: small objects, quick read-modify-writes.
args = base + ["size=256K", "chunk-size=64K"]


def lease():
    """The lease object as a dict of its key=value lines."""
    text = s3.get(LEASE_KEY).decode()
    return dict(line.split("=", 1) for line in text.splitlines()
                if "=" in line and not line.startswith("#"))


def refused(srv, export=""):
    """Connecting to SRV fails (the open of the volume is refused)."""
    try:
        h = srv.connect(export)
    except nbd.Error:
        return True
    h.shutdown()
    return False


def write_fails(h, fn, *a):
    try:
        fn(*a)
    except nbd.Error as e:
        check(e.errno == "EIO", "%s: EIO expected, got %s" % (fn.__name__, e))
        return
    fail("%s succeeded without the lease" % fn.__name__)


# Parameters are checked at start-up.
out = start_fails(args + ["lease-time=2"])
check("lease-time" in out, "lease-time=2 refused: %s" % out)
out = start_fails(args + ["lease-wait=x"])
check("lease-wait" in out, "lease-wait=x refused: %s" % out)

step("writer")
# ---- The writer takes the lease at its first open.
a = Server(args)
check(not s3.exists(LEASE_KEY), "no lease before the volume is opened")
ha = a.connect()
ha.pwrite(b"A" * 4096, 0)
la = lease()
check(la.get("format") == "shardkit-lease" and la.get("released") == "0" and
      la.get("pid") == str(a.proc.pid) and len(la.get("id", "")) == 32 and
      la.get("host") == os.uname().nodename and
      int(la["until-ms"]) > time.time() * 1000,
      "lease object of the writer: %s" % la)

step("second writer")
# ---- A second read-write server is refused, naming the holder.
b = Server(args)
check(refused(b), "second read-write server refused")
out = b.output()
m = re.search(r"error: .*being written by another server.*", out)
check(m, "one error line about the holder: %s" % out)
line = m.group(0)
for what in (la["host"], "pid %s" % la["pid"], la["id"], "until"):
    check(what in line, "error names %r: %s" % (what, line))
check(out.count("being written by another server") == 1,
      "one error line per refused open: %s" % out)
b.stop()
check(lease()["id"] == la["id"], "the refused server left the lease alone")

step("read-only")
# ---- Read-only servers work beside the writer, and take no lease.
r = Server(args, readonly=True)
hr = r.connect()
check(hr.pread(4096, 0) == b"A" * 4096, "read-only server reads")
ha.pwrite(b"a" * 4096, 0)
check(hr.pread(4096, 0) == b"a" * 4096, "read-only server sees the writes")
check(lease()["id"] == la["id"], "read-only server took no lease")
hr.shutdown()
r.stop()

step("clean stop")
# ---- A clean stop releases the lease: the next server starts at once,
# even with a long lease time.
ha.flush()
ha.shutdown()
a.stop()
check(lease()["released"] == "1", "clean stop released the lease: %s"
      % lease())
c = Server(args + ["lease-time=5"])
t0 = time.monotonic()
hc = c.connect()
check(time.monotonic() - t0 < 10, "released lease taken at once")
check(hc.pread(4096, 0) == b"a" * 4096, "data of the first writer")
hc.pwrite(b"C" * 4096, 65536)
hc.flush()
lc = lease()
check(lc["pid"] == str(c.proc.pid) and lc["released"] == "0",
      "the next writer holds the lease: %s" % lc)

step("SIGKILL")
# ---- SIGKILL: nobody releases the lease; it is taken over once it has
# ended (by this host's clock), never before.
until = int(lease()["until-ms"]) / 1000.0       # only grows while c runs
c.kill()
d = Server(args)
attempts = 0
while True:
    before = time.time()
    ok = not refused(d)
    attempts += 1
    if ok:
        check(time.time() >= until, "taken over only after the lease ended "
              "(%.2f s early)" % (until - time.time()))
        break
    check(time.time() < until + 20, "lease of the killed server never "
          "taken over: %s" % d.output())
    time.sleep(0.3)
if before < until - 1:
    check(attempts > 1, "a live lease was taken over")
hd = d.connect()
check(hd.pread(4096, 65536) == b"C" * 4096, "data of the killed writer")
check(lease()["pid"] == str(d.proc.pid), "takeover wrote the lease")
hd.shutdown()
d.stop()

step("SIGSTOP")
# ---- SIGSTOP past the lease: another server takes over; the stopped
# one, continued, must not change anything.
e = Server(args + ["lease-time=5"])
he = e.connect()
he.pwrite(b"E" * 4096, 0)
he.flush()
e.proc.send_signal(signal.SIGSTOP)
f = Server(args + ["lease-wait=30"])
t0 = time.monotonic()
hf = f.connect()                    # waits for e's lease to end
check(time.monotonic() - t0 < 30, "lease-wait took over an expired lease")
check("waiting up to 30 s" in f.output(), "f waited: %s" % f.output())
check(lease()["pid"] == str(f.proc.pid), "f holds the lease")
check(hf.pread(4096, 0) == b"E" * 4096, "f sees e's flushed data")
hf.pwrite(b"F" * 4096, 0)
hf.flush()
e.proc.send_signal(signal.SIGCONT)
# Whatever e's renewal thread does meanwhile, e's deadline has passed:
# every change fails with EIO, and a flush too.
write_fails(he, he.pwrite, b"X" * 4096, 0)
write_fails(he, he.pwrite, b"X" * 65536, 3 * 65536)
write_fails(he, he.trim, 65536, 65536)
write_fails(he, he.flush)
# Once its renewal has met f's lease (412) the loss is for good.
deadline = time.monotonic() + 20
while "lease lost: taken over by host" not in e.output():
    check(time.monotonic() < deadline, "e never noticed the takeover: %s"
          % e.output())
    time.sleep(0.2)
write_fails(he, he.pwrite, b"Y" * 4096, 8192)
check(lease()["pid"] == str(f.proc.pid), "e left f's lease alone")
out = e.output()
check(out.count("writes refused") <= 3,
      "refusals are not logged once per request: %s" % out)
he.shutdown()
e.stop()
check(lease()["pid"] == str(f.proc.pid) and lease()["released"] == "0",
      "e's clean stop did not release f's lease")
check(hf.pread(4096, 0) == b"F" * 4096, "f's data, not e's")
check(hf.pread(4096, 8192) == bytes(4096), "nothing of e's landed")
check(hf.pread(65536, 3 * 65536) == bytes(65536), "nothing of e's landed (2)")
check(hf.pread(4096, 65536) == b"C" * 4096, "e's trim did not land")

step("lease-wait")
# ---- lease-wait= for a lease that is released while waiting.
g = Server(args + ["lease-wait=40"])
got = {}


def connect_g():
    try:
        got["h"] = g.connect()
    except Exception as ex:
        got["error"] = ex


th = threading.Thread(target=connect_g)
th.start()
time.sleep(2)
check(th.is_alive(), "g waits while f holds the lease: %s %s"
      % (got, g.output()))
hf.shutdown()
t0 = time.monotonic()
f.stop()
th.join(30)
check(not th.is_alive() and "h" in got, "g got the released lease: %s %s"
      % (got, g.output()))
check(time.monotonic() - t0 < 10, "g took it soon after the release")
hg = got["h"]
check(hg.pread(4096, 0) == b"F" * 4096, "g reads f's data")
hg.pwrite(b"G" * 4096, 0)
hg.flush()
hg.shutdown()
g.stop()

step("final read")
# The data read afterwards is what the successive holders wrote.
r = Server(base, readonly=True)
hr = r.connect()
check(hr.pread(4096, 0) == b"G" * 4096 and
      hr.pread(4096, 65536) == b"C" * 4096 and
      hr.pread(65536, 3 * 65536) == bytes(65536), "final data")
hr.shutdown()
r.stop()
check(lease()["released"] == "1", "released at the end")

step("renewal outage")
# Renewals that merely fail (the gateway is down) fence the writer past
# its deadline; once one gets through again, nobody can have taken the
# lease meanwhile (its ETag is still ours) and writes resume.
k = Server(args + ["lease-time=5", "http-retries=0", "timeout=2"])
hk = k.connect()
hk.pwrite(b"K" * 65536, 2 * 65536)
hk.flush()
s3.stop_gateway()
time.sleep(5)                   # past the deadline: 3.3 s after a renewal
# A flush sends nothing to S3: only the lease refuses it.
write_fails(hk, hk.flush)
check("has not been renewed" in k.output(), "refused for want of a "
      "renewal: %s" % k.output())
s3.start_gateway()
deadline = time.monotonic() + 40
while True:
    try:
        hk.pwrite(b"L" * 65536, 2 * 65536)
        hk.flush()
        break
    except nbd.Error:
        check(time.monotonic() < deadline, "writes never resumed after "
              "the outage: %s" % k.output())
        time.sleep(0.5)
check("lease lost" not in k.output(), "the lease was not lost")
check(lease()["pid"] == str(k.proc.pid), "k still holds the lease")
check(hk.pread(65536, 2 * 65536) == b"L" * 65536, "k's write after the outage")
hk.shutdown()
k.stop()
check(lease()["released"] == "1", "k released the lease")
step("done")
print("ok")
