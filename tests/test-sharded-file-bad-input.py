"""sharded-file: bad configuration and damaged volumes.  Corrupt or
truncated metadata, size= or chunk-size= that contradict the volume, bad
parameters and a missing or unreadable dir= fail at start-up with one
clear message naming the culprit.  A chunk file longer than the chunk
size fails only the requests that touch it, with EIO; other chunks and
the server are fine."""

import os
import re
import shutil
import subprocess

import nbd

from shardkit_test import NBDKIT, Server, check, fail, start_fails, tmpdir

KiB = 1024
MiB = 1024 * KiB
top = tmpdir()
d = os.path.join(top, "vols")
os.mkdir(d)


def refuses(args, *words):
    out = start_fails(args)
    for w in words:
        check(w in out, "message %r lacks %r" % (out, w))
    check("Segmentation" not in out and "Aborted" not in out,
          "crash: " + out)
    # Under valgrind, its reports (==PID== ...) on the error path too.
    check(not re.search(r"^==\d+== ", out, re.M), "valgrind: " + out)
    return out


# Parameters.
missing = os.path.join(top, "nosuch")
refuses(["sharded-file"], "dir=")
refuses(["sharded-file", "dir=" + missing], "nosuch")
check(not os.path.exists(missing), "missing dir= was not created")
afile = os.path.join(top, "afile")
open(afile, "w").close()
refuses(["sharded-file", "dir=" + afile, "export=v", "size=1M"], "afile")
for cs in ("3000", "32K", "2G", "96K", "abc", "0", "-4M"):
    refuses(["sharded-file", "dir=" + d, "export=v", "size=1M",
             "chunk-size=" + cs], "chunk-size")
for sz in ("0", "abc", "-1"):
    refuses(["sharded-file", "dir=" + d, "export=v", "size=" + sz], "size")
refuses(["sharded-file", "dir=" + d, "export=v", "size=1M",
         "max-open-files=0"], "max-open-files")
refuses(["sharded-file", "dir=" + d, "export=v", "size=1M", "colour=blue"],
        "colour")
refuses(["sharded-file", "dir=" + d, "export=../v", "size=1M"], "export")
refuses(["sharded-file", "dir=" + d, "size=1M"], "export=")
# A volume that does not exist, without size= to create it.
refuses(["sharded-file", "dir=" + d, "export=v"], "'v'", "does not exist")
check(os.listdir(d) == [], "nothing created by refused configurations: %s"
      % os.listdir(d))

# A real volume with 64K chunks: chunks 0, 1 and 2 hold data.
srv = Server(["sharded-file", "dir=" + d, "export=v", "size=1M",
              "chunk-size=64K"])
h = srv.connect()
for n in range(3):
    h.pwrite(bytes([n + 1]) * (64 * KiB), n * 64 * KiB)
h.shutdown()
srv.stop()
meta_path = os.path.join(d, "v.meta")
good_meta = open(meta_path, "rb").read()

# size= and chunk-size= that contradict the existing volume.
refuses(["sharded-file", "dir=" + d, "export=v", "size=2M"],
        "size=", "'v'", "1048576")
refuses(["sharded-file", "dir=" + d, "export=v", "size=1M", "chunk-size=4M"],
        "chunk-size=", "'v'")
check(open(meta_path, "rb").read() == good_meta, "meta untouched by mismatch")

# Damaged metadata: each variant fails at start-up naming v.meta.
damaged = [
    ("truncated", good_meta[:len(good_meta) // 2]),
    ("empty", b""),
    ("garbage", os.urandom(300)),
    ("no size", b"".join(l for l in good_meta.splitlines(True)
                         if not l.startswith(b"size="))),
    ("bad size", good_meta.replace(b"size=1048576", b"size=12x")),
    ("zero size", good_meta.replace(b"size=1048576", b"size=0")),
    ("bad chunk size", good_meta.replace(b"chunk-size=65536",
                                         b"chunk-size=65537")),
    ("future version", good_meta.replace(b"version=1", b"version=99")),
    ("wrong format", good_meta.replace(b"format=shardkit-volume",
                                       b"format=something-else")),
    ("huge", good_meta + b"#" * (1 << 20)),
]
for what, text in damaged:
    with open(meta_path, "wb") as f:
        f.write(text)
    out = refuses(["sharded-file", "dir=" + d, "export=v"], "v.meta")
    # Also when a client asks for it by name (no export=): a clean NBD
    # error, the log names the file, the server survives.
    srv = Server(["sharded-file", "dir=" + d])
    hh = nbd.NBD()
    hh.set_export_name("v")
    try:
        hh.connect_unix(srv.sock)
        fail("%s metadata: volume served" % what)
    except nbd.Error:
        pass
    check("v.meta" in srv.output(), "%s: log names the file" % what)
    check(srv.proc.poll() is None, "%s: server alive" % what)
    srv.stop()
with open(meta_path, "wb") as f:
    f.write(good_meta)

# A chunk file longer than the chunk size: EIO for requests touching that
# chunk only.
with open(os.path.join(d, "v.1.chunk"), "ab") as f:
    f.write(b"!")
srv = Server(["sharded-file", "dir=" + d, "export=v"])
h = srv.connect()


def eio(op, what):
    try:
        op()
        fail("%s on the oversized chunk succeeded" % what)
    except nbd.Error as e:
        check(e.errno == "EIO", "%s: errno %s, want EIO" % (what, e.errno))


eio(lambda: h.pread(10, 64 * KiB + 5), "read")
eio(lambda: h.pread(128 * KiB, 0), "read spanning chunks 0-1")
eio(lambda: h.pwrite(b"x", 64 * KiB + 5), "write")
check(h.pread(64 * KiB, 0) == b"\x01" * (64 * KiB), "chunk 0 fine")
check(h.pread(64 * KiB, 128 * KiB) == b"\x03" * (64 * KiB), "chunk 2 fine")
h.pwrite(b"ok", 3 * 64 * KiB)
check(h.pread(2, 3 * 64 * KiB) == b"ok", "writes elsewhere fine")
check("v.1.chunk" in srv.output() and "longer than the chunk size"
      in srv.output(), "log names the corrupt chunk")
check(os.path.getsize(os.path.join(d, "v.1.chunk")) == 64 * KiB + 1,
      "corrupt chunk left as it was (evidence)")
h.shutdown()
check(srv.proc.poll() is None, "server alive")
srv.stop()

# A chunk file that is not a regular file (a directory in its place).
os.unlink(os.path.join(d, "v.2.chunk"))
os.mkdir(os.path.join(d, "v.2.chunk"))
srv = Server(["sharded-file", "dir=" + d, "export=v"])
h = srv.connect()
eio(lambda: h.pread(10, 128 * KiB), "read of a directory chunk")
check(h.pread(64 * KiB, 0) == b"\x01" * (64 * KiB), "chunk 0 still fine")
h.shutdown()
srv.stop()
os.rmdir(os.path.join(d, "v.2.chunk"))

# A symlink in place of a chunk file is not followed (it could point
# anywhere): EIO, and the target is untouched.
os.symlink(afile, os.path.join(d, "v.2.chunk"))
srv = Server(["sharded-file", "dir=" + d, "export=v"])
h = srv.connect()
eio(lambda: h.pread(10, 128 * KiB), "read of a symlink chunk")
eio(lambda: h.pwrite(b"x", 128 * KiB), "write to a symlink chunk")
check(os.path.getsize(afile) == 0, "symlink target untouched")
h.shutdown()
srv.stop()
os.unlink(os.path.join(d, "v.2.chunk"))

# An unreadable directory.  root bypasses permission bits, so as root the
# server is run as "nobody" (setpriv); without setpriv that part is
# skipped.
def unreadable_dir_refused(prefix):
    os.chmod(top, 0o755)
    os.chmod(d, 0)
    try:
        p = subprocess.run(prefix + [NBDKIT, "-f", "-U",
                                     os.path.join(top, "u.sock"),
                                     "sharded-file", "dir=" + d, "export=v"],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
    finally:
        os.chmod(d, 0o755)
    out = p.stdout + p.stderr
    check(p.returncode != 0, "served an unreadable dir=")
    check(d in out and "Permission denied" in out,
          "unreadable dir= message: %r" % out)


setpriv = shutil.which("setpriv")
if os.geteuid() != 0:
    unreadable_dir_refused([])
elif setpriv:
    unreadable_dir_refused([setpriv, "--reuid=nobody", "--regid=nogroup",
                            "--clear-groups"])
else:
    print("unreadable-dir part skipped: running as root (which ignores "
          "directory permissions) and no setpriv to drop privileges")
print("ok")
