"""chunk-cache cache-size=: clean blocks are evicted least recently used
first, the cache file stays within the bound, dirty blocks are never
evicted before they are written back, and evicted data reads back
correctly from the plugin."""

import os
import random
import time

from chunk_cache_util import MiB, fresh_stats, sharded_file_contents
from shardkit_test import Server, check, seed_from_env, tmpdir

seed = seed_from_env()
rng = random.Random(seed)
SIZE = 32 * MiB

d = tmpdir()
cd = tmpdir()
stats = tmpdir() + "/stats"
srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d,
              "export=vol", "size=%d" % SIZE, "cache-dir=" + cd,
              "cache-size=4M", "cache-block-size=1M", "max-dirty=2M",
              "writeback-delay=0", "readahead=0", "stats-file=" + stats,
              "stats-interval=0.05"])
h = srv.connect()


def st():
    return fresh_stats(stats)


# 16 MiB of writes through a 4 MiB cache: dirty blocks throttle the
# writers (max-dirty) and are written back before they can be evicted.
data = rng.randbytes(16 * MiB)
for off in range(0, len(data), 256 * 1024):
    h.pwrite(data[off:off + 256 * 1024], 8 * MiB + off)
h.flush()
check(h.pread(16 * MiB, 8 * MiB) == data, "all written data reads back")
s = st()
check(s["evictions"] > 0, "blocks were evicted")
check(s["cached-blocks"] <= 4, "at most cache-size cached: %r" % s)
used = os.stat(os.path.join(cd, "cache.data")).st_blocks * 512
check(used <= 5 * MiB, "cache file holds %d bytes for a 4M cache" % used)

# LRU order: blocks 0..3 cached, 0 used again, then 4 is read: block 1
# (the least recently used) goes, block 0 stays.
for b in (0, 1, 2, 3, 0, 4):
    h.pread(4096, b * MiB)
m0 = st()["misses"]
h.pread(4096, 0)
check(st()["misses"] == m0, "the recently used block 0 is still cached")
h.pread(4096, 1 * MiB)
check(st()["misses"] == m0 + 1, "the least recently used block 1 was evicted")

h.shutdown()
srv.stop()
expect = bytearray(SIZE)
expect[8 * MiB:24 * MiB] = data
check(sharded_file_contents(d, "vol", SIZE) == bytes(expect),
      "the plugin holds everything")
print("ok")
