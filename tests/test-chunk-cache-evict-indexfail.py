"""chunk-cache: eviction never gives back the data of a block whose index
update failed.

Evicting a clean block clears its byte in cache.index, then punches its
data out of cache.data.  When the index write fails (injected EIO,
tests/fault-inject.c), the file still counts the block as cached, so its
data must stay: otherwise, after a crash, the restarted cache trusts that
index byte and serves the punched-out hole as zeros."""

import os
import random

from chunk_cache_util import MiB, read_all
from shardkit_test import Server, check, fault_injector, seed_from_env, tmpdir

shim, faults = fault_injector()

rng = random.Random(seed_from_env())
SIZE = 8 * MiB
BS = MiB
d = tmpdir()
cd = tmpdir()
plugin = ["sharded-file", "dir=" + d, "export=vol", "size=%d" % SIZE]
args = ["--filter=chunk-cache"] + plugin + [
    "cache-dir=" + cd, "cache-block-size=1M", "cache-size=2M",
    "readahead=0"]

# The plugin holds random data (written without the cache).
data = rng.randbytes(SIZE)
srv = Server(plugin)
h = srv.connect()
h.pwrite(data, 0)
h.flush()
h.shutdown()
srv.stop()

# Blocks 0 and 1 are cached (clean, counted in the index).  Then the
# index cannot be written, and reading block 2 makes the cache evict its
# least recently used block, 0.
fail = os.path.join(faults, "fail-pwrite")
srv = Server(args, env={"LD_PRELOAD": shim, "SHARDKIT_FAULT_DIR": faults})
h = srv.connect()
check(h.pread(BS, 0) == data[:BS], "block 0 reads right")
check(h.pread(BS, BS) == data[BS:2 * BS], "block 1 reads right")
with open(fail, "w") as f:
    f.write("cache.index")
check(h.pread(BS, 2 * BS) == data[2 * BS:3 * BS], "block 2 reads right")
check(h.pread(BS, 0) == data[:BS],
      "block 0 reads right while the index is failing")
out = srv.output()
check("cache.index" in out, "the failing index write is logged")
srv.kill()                              # a crash
os.unlink(fail)

with open(os.path.join(cd, "cache.index"), "rb") as f:
    idx = f.read()
with open(os.path.join(cd, "cache.data"), "rb") as f:
    cached = f.read()
print("index bytes of blocks 0-2 after the crash: %r" % list(idx[:3]),
      flush=True)
for b in range(SIZE // BS):
    blk = cached[b * BS:(b + 1) * BS]
    check(idx[b] != 1 or blk == data[b * BS:(b + 1) * BS],
          "cache.index counts block %d as cached but its data in "
          "cache.data was %s" % (b, "punched out (zeros)" if not any(blk)
                                 else "changed"))

# After the restart (same boot: the index is trusted) every block reads
# what the plugin holds.
srv = Server(args)
h = srv.connect()
got = read_all(h, SIZE)
bad = [b for b in range(SIZE // BS) if got[b * BS:(b + 1) * BS] !=
       data[b * BS:(b + 1) * BS]]
check(not bad, "after the restart blocks %r read wrong%s" %
      (bad, " (zeros)" if bad and not any(got[bad[0] * BS:][:BS]) else ""))
h.shutdown()
srv.stop()
print("ok")
