"""chunk-cache reads: concurrent readers of one missing block share a
single plugin read; reads and writes are served at once while the same
blocks are being written back to a very slow plugin; writes of other
blocks do not wait for write-back until max-dirty is reached; rewrites
within writeback-delay are coalesced into one write-back."""

import threading
import time

from chunk_cache_util import MiB, nbdkit_stats_reads, read_stats
from shardkit_test import VALGRIND, Server, check, tmpdir

SIZE = 16 * MiB
SLOW = 5 if VALGRIND else 1          # time limits under valgrind

# 1. Eight readers of the same missing block, plugin reads take 0.5 s.
stats = tmpdir() + "/stats"
srv = Server(["--filter=chunk-cache", "--filter=stats", "--filter=delay",
              "memory", "size=%d" % SIZE, "statsfile=" + stats,
              "delay-read=%dms" % (500 * SLOW), "readahead=0"])
hs = [srv.connect() for _ in range(8)]
results = [None] * 8


def reader(i):
    results[i] = hs[i].pread(4096, 3 * MiB + i * 4096)


t0 = time.monotonic()
threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - t0
check(all(r == bytes(4096) for r in results), "all readers got the data")
for h in hs:
    h.shutdown()
srv.stop()
n = nbdkit_stats_reads(stats)
print("8 concurrent readers of one block: %d plugin read(s), %.2fs" % (n, took))
check(n == 1, "one shared plugin read, not %d" % n)
check(took < 1.5 * SLOW, "readers waited for the one read, not one after another")

# 2. A plugin that takes 2 s per write: write-back is in flight, yet the
# same block reads and rewrites at once, and other blocks write at once.
srv = Server(["--filter=chunk-cache", "--filter=delay", "memory",
              "size=%d" % SIZE, "delay-write=%d" % (2 * SLOW), "writeback-delay=0",
              "writeback-threads=2", "cache-block-size=1M",
              "shutdown-timeout=0"])
h = srv.connect()
h.pwrite(b"a" * MiB, 0)
time.sleep(0.2)                         # its write-back has started
t0 = time.monotonic()
check(h.pread(MiB, 0) == b"a" * MiB, "read during write-back")
h.pwrite(b"b" * 4096, 0)                # rewrite during write-back
check(h.pread(4096, 0) == b"b" * 4096, "rewrite visible at once")
for i in range(1, 6):                   # other blocks
    h.pwrite(b"c" * MiB, i * MiB)
took = time.monotonic() - t0
print("reads and writes during a 2 s write-back took %.2fs" % took)
check(took < 1.0 * SLOW, "nothing waited for the write-back")
h.shutdown()
srv.kill()

# 3. max-dirty: with 2 blocks of dirty data allowed and 300 ms per plugin
# write, writers of 10 blocks wait for write-back (back-pressure) instead
# of failing.
srv = Server(["--filter=chunk-cache", "--filter=delay", "memory",
              "size=%d" % SIZE, "delay-write=300ms", "writeback-delay=10",
              "writeback-threads=2", "cache-block-size=1M", "max-dirty=2M"])
h = srv.connect()
t0 = time.monotonic()
for i in range(10):
    h.pwrite(bytes([i + 1]) * MiB, i * MiB)
took = time.monotonic() - t0
print("10 MiB of writes with max-dirty=2M took %.2fs" % took)
# 8 blocks had to be written back first, 2 at a time, 0.3 s each.
check(took >= 1.0, "writers waited for write-back")
for i in range(10):
    check(h.pread(MiB, i * MiB) == bytes([i + 1]) * MiB, "block %d" % i)
h.flush()
h.shutdown()
srv.stop()

# 4. Coalescing: 50 rewrites of one block within writeback-delay=1s are
# one write-back; with writeback-delay=0 nearly every rewrite is one.
for delay, most in (("1", 2), ("0", None)):
    st = tmpdir() + "/stats"
    srv = Server(["--filter=chunk-cache", "--filter=delay", "memory",
                  "size=%d" % SIZE, "delay-write=20ms", "cache-block-size=1M",
                  "writeback-delay=" + delay, "stats-file=" + st,
                  "stats-interval=0.05"])
    h = srv.connect()
    for i in range(50):
        h.pwrite(bytes([i]) * 4096, 8192)
        time.sleep(0.005)
    h.flush()
    h.shutdown()
    srv.stop()
    n = read_stats(st)["written-back"]
    print("writeback-delay=%s: 50 rewrites, %d write-backs" % (delay, n))
    if most is not None:
        check(1 <= n <= most, "rewrites coalesced")
    else:
        check(n >= 5, "without delay, rewrites are written back as they come")
print("ok")
