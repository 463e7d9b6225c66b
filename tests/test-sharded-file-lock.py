"""sharded-file: a volume served read-write is locked against a second
nbdkit (at start-up for export=, else at connect time) with a message
naming the volume; read-only servers (-r) share a volume, refuse writes,
and keep a read-write server out."""

import os
import subprocess

import nbd

from shardkit_test import (Server, check, fail, need_tool, start_fails,
                           tmpdir)

MiB = 1024 * 1024
nbdsh = need_tool("nbdsh", "libnbd-bin")
d = tmpdir()
args = ["sharded-file", "dir=" + d, "export=vol", "size=8M"]

# The first server opens the volume read-write once a client connects.
a = Server(args)
ha = a.connect()
ha.pwrite(b"first", 0)
ha.flush()

# A second server with export=vol: refused at start-up, naming the volume.
out = start_fails(["sharded-file", "dir=" + d, "export=vol"])
check("'vol'" in out and "in use" in out, "start-up refusal names the "
      "volume:\n" + out)

# A second server without export=: starts, but a client asking for vol is
# refused, the log names the volume, and that server keeps serving others.
b = Server(["sharded-file", "dir=" + d])
hb = nbd.NBD()
hb.set_export_name("vol")
try:
    hb.connect_unix(b.sock)
    fail("second server served a volume locked by the first")
except nbd.Error:
    pass
check("volume 'vol'" in b.output() and "in use by another process"
      in b.output(), "connect-time refusal names the volume:\n" + b.output())
s2 = Server(["sharded-file", "dir=" + d, "export=other", "size=1M"])
s2.stop()
h = b.connect("other")
h.pwrite(b"x", 0)
h.shutdown()
b.stop()

# The first server is undisturbed.
check(ha.pread(5, 0) == b"first", "first server still serves")
ha.shutdown()
a.stop()

# Once the first server is gone, the volume is free again.
a = Server(args)
h = a.connect()
check(h.pread(5, 0) == b"first", "volume free after the first server exits")
h.shutdown()
a.stop()

# Read-only: two -r servers share the volume.
r1 = Server(["sharded-file", "dir=" + d, "export=vol"], readonly=True)
r2 = Server(["sharded-file", "dir=" + d, "export=vol"], readonly=True)
h1 = r1.connect()
h2 = r2.connect()
check(h1.is_read_only() and h2.is_read_only(), "read-only exports")
check(h1.pread(5, 0) == b"first" and h2.pread(5, 0) == b"first",
      "both read-only servers read the data")


def write_refused(h, what):
    # libnbd refuses writes to a read-only export on the client side; the
    # server refuses them too (checked below with strict mode off).
    for op in (lambda: h.pwrite(b"no", 0), lambda: h.trim(4096, 0),
               lambda: h.zero(4096, 0)):
        try:
            op()
            fail("%s: a write succeeded on a read-only server" % what)
        except nbd.Error as e:
            check(e.errno in ("EPERM", "EROFS", "EINVAL"),
                  "%s: errno %s" % (what, e.errno))


write_refused(h1, "client-side")
# With libnbd's client-side checks off, the write reaches the server.
hs = nbd.NBD()
hs.set_strict_mode(0)
hs.connect_unix(r1.sock)
for op in (lambda: hs.pwrite(b"no", 0), lambda: hs.trim(4096, 0),
           lambda: hs.zero(4096, 0)):
    try:
        op()
        fail("server accepted a write in read-only mode")
    except nbd.Error as e:
        check(e.errno in ("EPERM", "EROFS"), "server-side errno %s" % e.errno)
hs.shutdown()

# nbdsh as a client: a write fails, a read works.
env = dict(os.environ)
p = subprocess.run([nbdsh, "-u", r2.uri(), "-c",
                    "assert h.pread(5, 0) == b'first'", "-c",
                    "h.pwrite(b'no', 0)"], capture_output=True, text=True,
                   env=env)
check(p.returncode != 0 and ("not permitted" in p.stderr or "EROFS" in p.stderr or
                             "read-only" in p.stderr),
      "nbdsh write on -r refused: %r" % p.stderr)
p = subprocess.run([nbdsh, "-u", r2.uri(), "-c",
                    "assert h.pread(5, 0) == b'first'"],
                   capture_output=True, text=True, env=env)
check(p.returncode == 0, "nbdsh read on -r: %r" % p.stderr)

# A read-write server is kept out while read-only ones serve: at start-up
# or, failing that, at connect time, naming the volume.
rw = Server(["sharded-file", "dir=" + d, "export=vol"], wait=False)
try:
    rw.wait_ready()
    hw = nbd.NBD()
    try:
        hw.connect_unix(rw.sock)
        fail("read-write server served a volume held by -r servers")
    except nbd.Error:
        pass
except RuntimeError:
    pass                                # refused at start-up
rw.stop(check_exit=False)
check("'vol'" in rw.output() and "in use" in rw.output(),
      "read-write refusal names the volume:\n" + rw.output())

# Nothing was written by the read-only servers.
check(sorted(os.listdir(d)) == ["other.0.chunk", "other.meta",
                                "vol.0.chunk", "vol.meta"],
      "files: %s" % sorted(os.listdir(d)))
h1.shutdown()
h2.shutdown()
r1.stop()
r2.stop()

print("ok")
