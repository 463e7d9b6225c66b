"""chunk-cache: the cache file cut short while the server runs.  Reads of
cached blocks whose bytes are gone fail with EIO (never zeros, and never
SIGBUS, which would kill every connection); the server keeps serving the
rest; a dirty block whose bytes are gone is not written back as zeros:
the flush fails and the plugin keeps its older data."""

import errno
import os
import random

import nbd

from chunk_cache_util import MiB, read_all, sharded_file_contents
from shardkit_test import Server, check, seed_from_env, tmpdir

rng = random.Random(seed_from_env())
SIZE = 8 * MiB
d = tmpdir()
cd = tmpdir()
srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d,
              "export=vol", "size=%d" % SIZE, "cache-block-size=1M",
              "cache-dir=" + cd, "writeback-delay=60", "readahead=0"])
h = srv.connect()
old = rng.randbytes(SIZE)
h.pwrite(old, 0)
h.flush()
check(read_all(h, SIZE) == old, "first read back differs")

# Block 7 dirty (60 s before write-back), then the cache file loses its
# second half.
new7 = rng.randbytes(MiB)
h.pwrite(new7, 7 * MiB)
os.truncate(os.path.join(cd, "cache.data"), 4 * MiB)


def expect_eio(what, fn):
    try:
        fn()
    except nbd.Error as e:
        check(e.errnum == errno.EIO, "%s: errno %s, expected EIO (%s)"
              % (what, e.errno, e.string))
        return
    check(False, "%s succeeded on a cache file cut short" % what)


expect_eio("read of clean block 5", lambda: h.pread(4096, 5 * MiB + 100))
expect_eio("read of dirty block 7", lambda: h.pread(MiB, 7 * MiB))
check(srv.proc.poll() is None, "nbdkit died:\n" + srv.output())
# What is still in the file is served.
check(h.pread(4 * MiB, 0) == old[:4 * MiB], "blocks 0-3 differ")
# The write-back of block 7 cannot read its bytes: the flush fails.
expect_eio("flush", h.flush)
check(srv.proc.poll() is None, "nbdkit died:\n" + srv.output())
out = srv.output()
check("cut short" in out, "no log line about the cut cache file:\n" + out)
h.shutdown()
srv.stop(timeout=30, check_exit=False)

# The plugin never got zeros for block 7: it holds the flushed data.
check(sharded_file_contents(d, "vol", SIZE) == old,
      "the volume below the cache changed")
print("ok")
