"""chunk-cache serves every export of a multi-export plugin, each with
its own cache and its own write-back.

One nbdkit serves three volumes of one sharded-file directory through one
chunk-cache with cache-dir= and durability=local; "a" is the plugin's
default export (export=a), "b" and "c" are only reached by name.  Each
gets different data, flushed (fsynced in cache-dir, not written back:
writeback-delay is an hour), then nbdkit is killed (SIGKILL) with the
clients still connected.  The volumes themselves must not hold the data
yet.  After a restart each volume reads its own data through the cache;
once its clients have left and nbdkit has exited, sharded-file alone
serves the same data for each volume: every export's dirty data was
written back to that export, none to another."""

import os
import random

from chunk_cache_util import MiB, read_all, sharded_file_contents
from shardkit_test import Server, check, seed_from_env, tmpdir

rng = random.Random(seed_from_env())
SIZE = 8 * MiB
NAMES = ["a", "b", "c"]
d = tmpdir()
cd = tmpdir()

for name in NAMES:
    srv = Server(["sharded-file", "dir=" + d, "export=" + name,
                  "size=%d" % SIZE])
    srv.stop()

args = ["--filter=chunk-cache", "sharded-file", "dir=" + d, "export=a",
        "cache-dir=" + cd, "durability=local", "cache-block-size=1M",
        "writeback-delay=3600", "readahead=0"]

# What each volume must hold: a few random ranges of its own data.
want = {}
srv = Server(args)
handles = {}
for name in NAMES:
    handles[name] = h = srv.connect(export=name)
    model = bytearray(SIZE)
    for _ in range(6):
        n = rng.randrange(1, 3 * MiB // 512) * 512
        off = rng.randrange(0, (SIZE - n) // 512) * 512
        buf = rng.randbytes(n)
        h.pwrite(buf, off)
        model[off:off + n] = buf
    h.flush()
    want[name] = bytes(model)
for name in NAMES:
    check(read_all(handles[name], SIZE) == want[name],
          "export %s reads its own data before the crash" % name)
srv.kill()                              # clients still connected

check(os.path.exists(os.path.join(cd, "cache.meta")),
      "the default export's cache is cache-dir itself")
for name in ("b", "c"):
    check(os.path.exists(os.path.join(cd, "exports", name, "cache.meta")),
          "export %s has its own cache in cache-dir/exports/%s"
          % (name, name))
for name in NAMES:
    check(sharded_file_contents(d, name, SIZE) != want[name],
          "volume %s already held its data before the restart (the test "
          "needs it only in the cache)" % name)

# Restart: each export is served its own data, from the cache.
srv = Server(args)
for name in NAMES:
    h = srv.connect(export=name)
    check(read_all(h, SIZE) == want[name],
          "after the crash export %s reads its own data" % name)
    h.shutdown()
srv.stop()
out = srv.output()
for name in NAMES:
    check("chunk-cache: %s: recovering" % name in out,
          "the restart recovered export %s's dirty blocks" % name)
check("not written back" not in out, "everything was written back")

for name in NAMES:
    got = sharded_file_contents(d, name, SIZE)
    check(got == want[name],
          "volume %s holds its own data once written back" % name)
print("ok")
