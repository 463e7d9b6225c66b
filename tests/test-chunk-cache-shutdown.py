"""chunk-cache clean shutdown: on SIGTERM, and when the last client
leaves with nbdkit's exitlast filter, every dirty block is written back
(with progress in the log) before nbdkit exits.  (No delay filter below:
nbdkit aborts its sleeps once shutting down.)"""

import random
import time

from chunk_cache_util import MiB, sharded_file_contents
from shardkit_test import Server, check, seed_from_env, tmpdir

seed = seed_from_env()
rng = random.Random(seed)
SIZE = 16 * MiB

for how in ("SIGTERM", "exitlast"):
    d = tmpdir()
    args = ["--filter=chunk-cache", "sharded-file",
            "dir=" + d, "export=vol", "size=%d" % SIZE,
            "writeback-delay=60", "writeback-threads=2",
            "cache-block-size=1M"]
    if how == "exitlast":
        args = ["--filter=exitlast"] + args
    srv = Server(args)
    h = srv.connect()
    data = rng.randbytes(12 * MiB)
    h.pwrite(data, 2 * MiB)         # 12 dirty blocks, write-back in 60 s
    h.shutdown()
    del h
    t0 = time.monotonic()
    if how == "SIGTERM":
        rc = srv.stop()
    else:
        rc = srv.proc.wait(30)       # exits by itself
    took = time.monotonic() - t0
    out = srv.output()
    print("%s: exit %d after %.1fs" % (how, rc, took))
    check(rc == 0, "clean exit")
    check("write-back finished" in out and "(0 blocks left)" in out,
          "progress in the log")
    expect = bytearray(SIZE)
    expect[2 * MiB:14 * MiB] = data
    check(sharded_file_contents(d, "vol", SIZE) == bytes(expect),
          "%s: everything written back" % how)

# A layer below that refuses to work once nbdkit is shutting down (the
# delay filter aborts its sleeps): nbdkit does not hang until
# shutdown-timeout, and the dirty blocks stay in cache-dir for the next
# start.
d = tmpdir()
cd = tmpdir()
srv = Server(["--filter=chunk-cache", "--filter=delay", "sharded-file",
              "dir=" + d, "export=vol", "size=%d" % SIZE,
              "delay-write=50ms", "writeback-delay=60", "cache-dir=" + cd])
h = srv.connect()
data = rng.randbytes(3 * MiB)
h.pwrite(data, 0)
h.shutdown()
del h
t0 = time.monotonic()
srv.stop()
took = time.monotonic() - t0
print("delay below: exit after %.1fs" % took)
check(took < 15, "no hang until shutdown-timeout")
check("stay dirty in cache-dir" in srv.output(), "says where the data is")
srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d,
              "export=vol", "cache-dir=" + cd])
srv.stop()
expect = bytearray(SIZE)
expect[0:3 * MiB] = data
check(sharded_file_contents(d, "vol", SIZE) == bytes(expect),
      "written back at the next start")
print("ok")
