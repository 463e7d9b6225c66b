"""chunk-cache: write-back racing rewrites.  The plugin is slow (nbdkit's
delay filter under the cache), write-back starts at once, and the same
blocks are rewritten again and again, from several connections and
threads, while their write-back is in flight.  After a flush and kill -9
the plugin must hold exactly the last data of every block."""

import random
import threading

from chunk_cache_util import (KiB, MiB, Model, read_stats,
                              sharded_file_contents)
from shardkit_test import Server, check, seed_from_env, tmpdir

seed = seed_from_env()
SIZE = 8 * MiB
BS = 256 * KiB
HOT = 6                                 # blocks rewritten over and over

d = tmpdir()
stats = tmpdir() + "/stats"
srv = Server(["--filter=chunk-cache", "--filter=delay", "sharded-file",
              "dir=" + d, "export=vol", "size=%d" % SIZE,
              "delay-write=30ms", "writeback-delay=0",
              "cache-block-size=%d" % BS, "writeback-threads=4",
              "stats-file=" + stats, "stats-interval=0.1"])
model = Model(SIZE)
lock = threading.Lock()
errors = []

# Each thread owns a disjoint set of 4K pages inside the hot blocks, so
# the final contents do not depend on how threads interleave; but they
# share blocks, so every block is rewritten by several threads while it
# is being written back.
NTHREADS = 4


def writer(t):
    rng = random.Random(seed + t)
    h = srv.connect()
    try:
        for i in range(300):
            blk = rng.randrange(HOT)
            page = rng.randrange(BS // (4 * KiB) // NTHREADS) * NTHREADS + t
            off = blk * BS + page * 4 * KiB
            buf = rng.randbytes(4 * KiB)
            h.pwrite(buf, off)
            with lock:
                model.write(off, buf)
            if i % 100 == 99:
                h.flush()
        h.shutdown()
    except Exception as e:                # reported by the main thread
        errors.append(repr(e))


threads = [threading.Thread(target=writer, args=(t,))
           for t in range(NTHREADS)]
for th in threads:
    th.start()
for th in threads:
    th.join()
check(not errors, "writers failed: %s" % errors)

h = srv.connect()
check(h.pread(SIZE, 0) == bytes(model.data), "cache serves the last data")
h.flush()
srv.kill()
st = read_stats(stats)
print("stats:", st)
check(st["written-back"] > HOT, "blocks were written back several times")
got = sharded_file_contents(d, "vol", SIZE)
check(got == bytes(model.data),
      "the plugin misses a rewrite that raced its write-back")
print("ok")
