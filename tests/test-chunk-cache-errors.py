"""chunk-cache with errors injected below it (nbdkit's error filter):
write-back failures keep blocks dirty, flush reports EIO until the
plugin takes the data, and no data is ever dropped."""

import os
import random
import time

import nbd

from chunk_cache_util import (MiB, Model, fresh_stats, read_all,
                              sharded_file_contents)
from shardkit_test import Server, check, seed_from_env, tmpdir

seed = seed_from_env()
rng = random.Random(seed)
SIZE = 16 * MiB

d = tmpdir()
t = tmpdir()
errfile = os.path.join(t, "inject")
stats = os.path.join(t, "stats")


def server(extra):
    return Server(["--filter=chunk-cache", "--filter=error", "sharded-file",
                   "dir=" + d, "export=vol", "size=%d" % SIZE,
                   "writeback-delay=0", "writeback-threads=3",
                   "stats-file=" + stats, "stats-interval=0.1",
                   "error=EIO", "error-file=" + errfile] + extra)


def flush_fails(h):
    try:
        h.flush()
        return False
    except nbd.Error as e:
        return e.errnum == 5        # EIO


# 1. Every plugin write fails.
open(errfile, "w").close()
srv = server(["error-pwrite-rate=100%"])
h = srv.connect()
model = Model(SIZE)
data = rng.randbytes(4 * MiB + 1000)
h.pwrite(data, 3 * MiB + 512)         # acknowledged: it is in the cache
model.write(3 * MiB + 512, data)
check(flush_fails(h), "flush reports the write-back failure with EIO")
check(flush_fails(h), "and again, while the plugin still fails")
check(h.pread(len(data), 3 * MiB + 512) == data, "data served meanwhile")
st = fresh_stats(stats)
check(st["writeback-errors"] > 0 and st["dirty-blocks"] > 0,
      "stats show errors and dirty blocks: %r" % st)

# The plugin recovers: the next flush succeeds.
os.unlink(errfile)
h.flush()
srv.kill()                            # the flush promised it is below
check(sharded_file_contents(d, "vol", SIZE) == bytes(model.data),
      "data written back after the errors stopped")

# 2. Intermittent failures under random writes on two connections: a
# flush may fail, but repeating it eventually succeeds and nothing is lost.
open(errfile, "w").close()
srv = server(["error-pwrite-rate=30%"])
hs = [srv.connect(), srv.connect()]
failures = 0
for i in range(150):
    n = rng.randrange(1, 64) * 4096
    off = rng.randrange(0, (SIZE - n) // 4096) * 4096
    buf = rng.randbytes(n)
    hs[i % 2].pwrite(buf, off)
    model.write(off, buf)
    if i % 30 == 29:
        if flush_fails(hs[0]):
            failures += 1
os.unlink(errfile)
hs[1].flush()
check(read_all(hs[0], SIZE) == bytes(model.data), "served contents")
srv.kill()
print("intermittent: %d flushes failed" % failures)
check(sharded_file_contents(d, "vol", SIZE) == bytes(model.data),
      "nothing lost under intermittent errors")

# 3. A clean stop while the plugin fails: bounded, and the data stays in
# cache-dir to be written back at the next start.
cd = tmpdir()
open(errfile, "w").close()
srv = server(["error-pwrite-rate=100%", "cache-dir=" + cd,
              "shutdown-timeout=1"])
h = srv.connect()
h.pwrite(b"y" * 8192, 5 * MiB)
model.write(5 * MiB, b"y" * 8192)
h.shutdown()
t0 = time.monotonic()
srv.stop()
check(time.monotonic() - t0 < 10, "shutdown bounded by shutdown-timeout")
check("written back at the next start" in srv.output(),
      "shutdown says what happens to the dirty blocks")
os.unlink(errfile)
srv = server(["cache-dir=" + cd])     # recovers without any client
srv.stop()
check(sharded_file_contents(d, "vol", SIZE) == bytes(model.data),
      "dirty blocks left by a failed shutdown written back at restart")
print("ok")
