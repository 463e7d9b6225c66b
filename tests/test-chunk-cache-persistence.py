"""chunk-cache cache-dir: the cache survives a restart (warm reads cost
no plugin reads, counted by nbdkit's stats filter under the cache);
sequential reads are read ahead; a cache-dir that belongs to another
export, size or block size, or is in use, is refused."""

import os
import random

import nbd

from chunk_cache_util import (MiB, nbdkit_stats_reads, read_all, read_stats,
                              sharded_file_contents)
from shardkit_test import Server, check, seed_from_env, start_fails, tmpdir

seed = seed_from_env()
rng = random.Random(seed)
SIZE = 32 * MiB

d = tmpdir()
cd = tmpdir()
for name, size in (("vol", SIZE), ("other", SIZE), ("small", 16 * MiB)):
    Server(["sharded-file", "dir=" + d, "export=" + name,
            "size=%d" % size]).stop()


def cached(export, statsfile, extra=()):
    return Server(["--filter=chunk-cache", "--filter=stats", "sharded-file",
                   "dir=" + d, "export=" + export, "cache-dir=" + cd,
                   "statsfile=" + statsfile, "cache-block-size=1M"]
                  + list(extra))


# 1. Write some data, read the whole disk (the cache is now warm), stop.
s1 = tmpdir() + "/stats1"
srv = cached("vol", s1)
h = srv.connect()
data = rng.randbytes(5 * MiB)
h.pwrite(data, 7 * MiB + 4096)
whole = read_all(h, SIZE)
check(whole[7 * MiB + 4096:12 * MiB + 4096] == data, "read back")
h.shutdown()
srv.stop()
check(nbdkit_stats_reads(s1) > 0, "a cold cache reads the plugin")
check(sharded_file_contents(d, "vol", SIZE) == whole,
      "a clean stop wrote everything back")

# 2. Restart: every read is served from cache-dir, none from the plugin.
s2 = tmpdir() + "/stats2"
cs = tmpdir() + "/cstats"
srv = cached("vol", s2, ["stats-file=" + cs])
h = srv.connect()
check(read_all(h, SIZE, step=1 * MiB) == whole, "warm contents")
h.shutdown()
srv.stop()
check(nbdkit_stats_reads(s2) == 0,
      "warm reads after a restart read the plugin %d times"
      % nbdkit_stats_reads(s2))
st = read_stats(cs)
check(st["hits"] >= SIZE // MiB and st["misses"] == 0,
      "all hits: %r" % st)

# cache-mode=readonly with nbdkit -r over the same warm cache-dir: a
# read-only export, still served without plugin reads.
s2r = tmpdir() + "/stats2r"
srv = Server(["--filter=chunk-cache", "--filter=stats", "sharded-file",
              "dir=" + d, "export=vol", "cache-dir=" + cd,
              "statsfile=" + s2r, "cache-mode=readonly"], readonly=True)
h = srv.connect()
check(h.is_read_only(), "cache-mode=readonly export is read-only")
check(read_all(h, SIZE) == whole, "readonly contents")
h.shutdown()
srv.stop()
check(nbdkit_stats_reads(s2r) == 0, "readonly: warm reads from the cache")

# 3. Read-ahead: sequential reads on a cold cache are fetched ahead.
cd2 = tmpdir()
cs2 = tmpdir() + "/cstats2"
srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d,
              "export=other", "cache-dir=" + cd2, "cache-block-size=1M",
              "readahead=4", "stats-file=" + cs2])
h = srv.connect()
for off in range(0, 16 * MiB, 256 * 1024):
    h.pread(256 * 1024, off)
h.shutdown()
srv.stop()
st = read_stats(cs2)
print("read-ahead stats:", st)
check(st["readahead-bytes"] > 0, "sequential reads were read ahead")
check(st["misses"] < 16, "read-ahead turned misses into hits")

# Mode change over leftover dirty data: write-back with a long delay,
# kill -9, then restart in writethrough mode and write part of the same
# blocks: the plugin ends up with the old dirty data and the new write
# on top, in the right order.
d3 = tmpdir()
cd4 = tmpdir()
Server(["sharded-file", "dir=" + d3, "export=v", "size=%d" % SIZE]).stop()
wb = ["--filter=chunk-cache", "sharded-file", "dir=" + d3, "export=v",
      "cache-dir=" + cd4, "cache-block-size=1M"]
srv = Server(wb + ["writeback-delay=60"])
h = srv.connect()
old = rng.randbytes(2 * MiB)
h.pwrite(old, 4 * MiB)
srv.kill()
# The plugin is slow now, so the recovery write-back of the old data is
# still in flight when the new write arrives.
srv = Server(["--filter=chunk-cache", "--filter=delay", "sharded-file",
              "dir=" + d3, "export=v", "cache-dir=" + cd4,
              "cache-block-size=1M", "cache-mode=writethrough",
              "delay-write=1"])
h = srv.connect()
new = rng.randbytes(8192)
h.pwrite(new, 5 * MiB - 4096)
expect = bytearray(old)
expect[MiB - 4096:MiB + 4096] = new
check(h.pread(2 * MiB, 4 * MiB) == bytes(expect),
      "the cache serves the write-through data over recovered dirty data")
h.shutdown()
srv.stop()
check(sharded_file_contents(d3, "v", SIZE)[4 * MiB:6 * MiB] == bytes(expect),
      "writethrough over recovered dirty blocks")

# 4. Refusals.
# Another export through the same cache-dir: nbdkit refuses to start
# (the header records the plugin's own description of the volume).
out = start_fails(["--filter=chunk-cache", "sharded-file", "dir=" + d,
                   "export=other", "cache-dir=" + cd])
check("holds the cache of 'sharded-file volume vol" in out and
      "volume other" in out, "clear error for another export: " + out)

# A plugin of another size: nbdkit refuses to start.
out = start_fails(["--filter=chunk-cache", "memory", "size=16M",
                   "cache-dir=" + cd])
check("holds the cache of export 'vol'" in out and "size" in out,
      "clear error for another size: " + out)

# Another block size.
out = start_fails(["--filter=chunk-cache", "sharded-file", "dir=" + d,
                   "export=vol", "cache-dir=" + cd, "cache-block-size=256K"])
check("cache-block-size" in out, "clear error for another block size")

# Not a cache directory at all.
junk = tmpdir()
with open(os.path.join(junk, "cache.meta"), "w") as f:
    f.write("hello\n")
out = start_fails(["--filter=chunk-cache", "memory", "size=16M",
                   "cache-dir=" + junk])
check("not a chunk-cache header" in out, "clear error for junk")

# In use by another nbdkit.
cd3 = tmpdir()
srv = Server(["--filter=chunk-cache", "memory", "size=16M",
              "cache-dir=" + cd3])
srv.connect().shutdown()
out = start_fails(["--filter=chunk-cache", "memory", "size=16M",
                   "cache-dir=" + cd3])
check("another nbdkit" in out, "clear error for a cache-dir in use: " + out)
srv.stop()

# durability=local needs cache-dir.
out = start_fails(["--filter=chunk-cache", "memory", "size=1M",
                   "durability=local"])
check("durability=local needs cache-dir" in out, "durability=local check")
# A serialized layer below: the workers would break its serialization.
out = start_fails(["--filter=chunk-cache", "--filter=noparallel", "memory",
                   "size=1M"])
check("parallel thread model" in out, "thread model check: " + out)
print("ok")
