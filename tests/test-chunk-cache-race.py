"""chunk-cache: write-back racing rewrites.  The plugin is slow (nbdkit's
delay filter under the cache), write-back starts at once, and the same
blocks are rewritten again and again, from several connections and
threads, while their write-back is in flight.  After a flush and kill -9
the plugin must hold exactly the last data of every block."""

import random
import threading

from chunk_cache_util import (KiB, MiB, Model, fresh_stats,
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
st = fresh_stats(stats)
srv.kill()
print("stats:", st)
check(st["written-back"] > HOT, "blocks were written back several times")
got = sharded_file_contents(d, "vol", SIZE)
check(got == bytes(model.data),
      "the plugin misses a rewrite that raced its write-back")

# 2. Mixed operations from threads on interleaved pages of shared blocks:
# writes, zeros, trims, FUA writes and reads race with write-back,
# loading of evicted blocks (cache-size is small) and each other.
d2 = tmpdir()
srv = Server(["--filter=chunk-cache", "--filter=delay", "sharded-file",
              "dir=" + d2, "export=vol", "size=%d" % SIZE,
              "delay-write=5ms", "delay-read=5ms", "writeback-delay=0",
              "cache-block-size=64K", "cache-size=512K", "max-dirty=256K",
              "writeback-threads=4"])
model = Model(SIZE)
errors.clear()
PAGES_PER_THREAD = SIZE // (4 * KiB) // NTHREADS


def mixed(t):
    import nbd
    rng = random.Random(seed * 7 + t)
    h = srv.connect()
    try:
        for i in range(250):
            # a page of this thread: pages t, t+N, t+2N, ... in 2 MiB
            p = rng.randrange(512 // NTHREADS) * NTHREADS + t
            off = p * 4 * KiB
            op = rng.random()
            if op < 0.4:
                buf = rng.randbytes(4 * KiB)
                h.pwrite(buf, off, nbd.CMD_FLAG_FUA if op < 0.05 else 0)
                with lock:
                    model.write(off, buf)
            elif op < 0.5:
                h.zero(4 * KiB, off)
                with lock:
                    model.zero(off, 4 * KiB)
            elif op < 0.6:
                h.trim(4 * KiB, off)
                with lock:
                    model.zero(off, 4 * KiB)
            else:
                got = h.pread(4 * KiB, off)
                with lock:
                    want = bytes(model.data[off:off + 4 * KiB])
                if got != want:
                    errors.append("thread %d op %d: page %d reads wrong"
                                  % (t, i, p))
                    return
        h.shutdown()
    except Exception as e:
        errors.append(repr(e))


threads = [threading.Thread(target=mixed, args=(t,))
           for t in range(NTHREADS)]
for th in threads:
    th.start()
for th in threads:
    th.join()
check(not errors, "mixed: %s" % errors)
h = srv.connect()
check(h.pread(SIZE, 0) == bytes(model.data), "mixed: cache contents")
h.flush()
srv.kill()
check(sharded_file_contents(d2, "vol", SIZE) == bytes(model.data),
      "mixed: plugin contents after flush")
print("ok")
