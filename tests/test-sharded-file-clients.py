"""sharded-file with real clients: qemu-img convert a 256 MiB random image
(with zero regions) in and back out with equal checksums, qemu-img info
and compare, and nbdcopy both ways."""

import hashlib
import json
import os
import random
import subprocess

from shardkit_test import (Server, VALGRIND, check, need_tool, seed_from_env,
                           tmpdir)

MiB = 1024 * 1024
SIZE = (64 if VALGRIND else 256) * MiB
qemu_img = need_tool("qemu-img", "qemu-utils")
nbdcopy = need_tool("nbdcopy", "libnbd-bin")

seed = seed_from_env()
rng = random.Random(seed)
work = tmpdir()
d = os.path.join(work, "vols")
os.mkdir(d)


def run(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    check(p.returncode == 0, "%s failed: %s%s" % (" ".join(cmd), p.stdout,
                                                 p.stderr))
    return p.stdout


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(8 * MiB), b""):
            h.update(b)
    return h.hexdigest()


# A random image with some zero regions (whole chunks and pieces), so that
# the clients' zero detection and the plugin's sparseness both matter.
src = os.path.join(work, "src.img")
zero_chunks = set(rng.sample(range(SIZE // (4 * MiB)), SIZE // (4 * MiB) // 6))
zero_mibs = set(rng.sample(range(SIZE // MiB), SIZE // MiB // 10))
with open(src, "wb") as f:
    for i in range(SIZE // MiB):
        if i // 4 in zero_chunks or i in zero_mibs:
            f.write(bytes(MiB))
        else:
            f.write(os.urandom(MiB))
want = sha(src)

srv = Server(["sharded-file", "dir=" + d, "export=img", "size=%d" % SIZE])
uri = srv.uri()

# qemu-img info sees a raw disk of the right size.
info = json.loads(run(qemu_img, "info", "--output=json", uri))
check(info["virtual-size"] == SIZE, "qemu-img info size: %s" % info)
check(info["format"] == "raw", "qemu-img info format: %s" % info)

# In with qemu-img convert, out again, compare.
run(qemu_img, "convert", "-n", "-f", "raw", "-O", "raw", "-W", src, uri)
out = os.path.join(work, "out-qemu.img")
run(qemu_img, "convert", "-f", "raw", "-O", "raw", uri, out)
check(sha(out) == want, "qemu-img round trip checksum")
run(qemu_img, "compare", "-f", "raw", "-F", "raw", src, uri)
# Zero regions were not stored: fewer chunk files than chunks.
nfiles = len([f for f in os.listdir(d) if f.endswith(".chunk")])
check(nfiles <= SIZE // (4 * MiB) - len(zero_chunks),
      "sparse: %d chunk files for %d chunks of which %d are zero"
      % (nfiles, SIZE // (4 * MiB), len(zero_chunks)))
os.unlink(out)

# nbdcopy out to a file and in to a second volume, then compare.
out = os.path.join(work, "out-nbdcopy.img")
run(nbdcopy, uri, out)
check(sha(out) == want, "nbdcopy out checksum")
os.unlink(out)
srv.stop()

srv = Server(["sharded-file", "dir=" + d, "export=copy",
              "size=%d" % SIZE, "chunk-size=64K"])
run(nbdcopy, "--flush", src, srv.uri())
out = os.path.join(work, "out2.img")
run(qemu_img, "convert", "-f", "raw", "-O", "raw", srv.uri(), out)
check(sha(out) == want, "nbdcopy in checksum")
os.unlink(out)

# nbdcopy between two servers (NBD to NBD), after a restart of the source.
srv.stop()
srv = Server(["sharded-file", "dir=" + d, "export=copy"])
dst_dir = os.path.join(work, "dst")
os.mkdir(dst_dir)
dst = Server(["sharded-file", "dir=" + dst_dir, "export=x",
              "size=%d" % SIZE])
run(nbdcopy, "--flush", srv.uri(), dst.uri())
run(qemu_img, "compare", "-f", "raw", "-F", "raw", src, dst.uri())
srv.stop()
dst.stop()
print("ok")
