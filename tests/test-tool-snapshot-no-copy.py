"""shardkit snapshot and clone copy no chunk data: on a 100 GiB volume
with 25% of its 4 MiB chunks allocated (sparse chunk files of the right
names), every chunk file is the same file (inode, size) after two
snapshots and a clone; the clone then reads through (a chunk of the
snapshot's data served by the clone).  The time each takes is printed,
not asserted: bench/snapshot-clone.sh measures it."""

import os
import time

from shardkit_test import Server, check, tmpdir
from tool_test import MiB, ok

GiB = 1024 * MiB
d = tmpdir()
ok("create", d, "big", "100G")
nchunks = 100 * GiB // (4 * MiB)
for n in range(0, nchunks, 4):
    with open(os.path.join(d, "big.%d.chunk" % n), "wb") as f:
        if n == 8:
            f.write(b"marker")
        f.truncate(4 * MiB)


def chunk_files():
    return {f: (st.st_ino, st.st_size) for f in os.listdir(d)
            if f.endswith(".chunk")
            for st in [os.stat(os.path.join(d, f))]}


before = chunk_files()
check(len(before) == nchunks // 4, "%d chunk files" % len(before))
for args in (("snapshot", d, "big", "snap"), ("clone", d, "snap", "c"),
             ("snapshot", d, "big", "snap2")):
    t0 = time.monotonic()
    ok(*args)
    t = time.monotonic() - t0
    print("%s: %.3fs" % (" ".join(args[:1] + args[2:]), t), flush=True)
check(chunk_files() == before, "no chunk file was touched")

srv = Server(["sharded-file", "dir=" + d, "export=c"], readonly=True)
h = srv.connect()
check(h.pread(8, 8 * 4 * MiB) == b"marker\0\0", "the clone reads through")
h.shutdown()
srv.stop()
print("ok")
