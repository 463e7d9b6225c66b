"""chunk-cache: seeded random operations on several connections through
the cache, checked against a model, stacked over nbdkit's memory plugin
and over sharded-file; for sharded-file, what an acknowledged flush
promised (durability=remote) is checked in the plugin itself after
kill -9 of nbdkit."""

import os
import random

import nbd

from chunk_cache_util import (KiB, MiB, Model, first_difference, random_ops,
                              read_all, read_stats, sharded_file_contents)
from shardkit_test import Server, check, seed_from_env, tmpdir

seed = seed_from_env()
rng = random.Random(seed)
SIZE = 48 * MiB

variants = [
    # (name, extra parameters)
    ("default", []),
    ("small-blocks-evicting", ["cache-block-size=64K", "cache-size=2M",
                               "max-dirty=1M", "writeback-delay=0"]),
    ("writethrough", ["cache-mode=writethrough", "cache-size=8M"]),
]

# Over nbdkit memory: several connections, reads checked all along.
for name, extra in variants:
    print("memory:", name, flush=True)
    st = tmpdir() + "/stats"
    srv = Server(["--filter=chunk-cache", "memory", "size=%d" % SIZE,
                  "writeback-delay=0.05", "stats-file=" + st,
                  "stats-interval=0.2"] + extra)
    hs = [srv.connect() for _ in range(3)]
    check(hs[0].can_multi_conn(), "multi-conn advertised (memory has it)")
    check(hs[0].can_fua() and hs[0].can_flush(), "flush and FUA")
    model = Model(SIZE)
    random_ops(rng, hs, model, 300, SIZE)
    hs[1].flush()
    check(read_all(hs[2], SIZE) == bytes(model.data), "final contents")
    for h in hs:
        h.shutdown()
    srv.stop()
    s = read_stats(st)
    print("  stats:", s)
    check(s["dirty-blocks"] == 0, "nothing dirty after a clean exit")
    if "evicting" in name:
        check(s["evictions"] > 0, "small cache-size evicted blocks")

# Over sharded-file: after an acknowledged flush, kill -9; the plugin
# alone must hold everything.
for name, extra in variants:
    print("sharded-file:", name, flush=True)
    d = tmpdir()
    srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d,
                  "export=vol", "size=%d" % SIZE, "chunk-size=1M",
                  "writeback-delay=0.05"] + extra)
    hs = [srv.connect() for _ in range(3)]
    model = Model(SIZE)
    random_ops(rng, hs, model, 200, SIZE)
    hs[0].flush()
    srv.kill()
    got = sharded_file_contents(d, "vol", SIZE)
    diff = first_difference(got, bytes(model.data))
    check(diff is None, "plugin after flush + kill -9 differs at %s" % diff)


# Every export has its own cache and is written back to its own volume
# (issue 13): 'b', which is not the plugin's default export, is served
# with a cache of its own in cache-dir/exports/b, and nothing of either
# export reaches the other's volume.  (Until issue 13 a client asking for
# another export than the default was refused here.)
d = tmpdir()
cd = tmpdir()
for name in ("a", "b"):
    Server(["sharded-file", "dir=" + d, "export=" + name,
            "size=%d" % SIZE]).stop()
srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d,
              "export=a", "cache-dir=" + cd])
hb = srv.connect("b")
hb.pwrite(b"b" * 4096, 0)
hb.flush()
check(os.path.exists(os.path.join(cd, "exports", "b", "cache.meta")),
      "export 'b' has its own cache")
h = srv.connect()                      # the default export, 'a'
h.pwrite(b"a" * 4096, 0)
check(hb.pread(4096, 0) == b"b" * 4096, "'b' reads its own data")
h.shutdown()
hb.shutdown()
srv.stop()
check(sharded_file_contents(d, "b", SIZE)[:4096] == b"b" * 4096,
      "'b' written back to 'b'")
check(sharded_file_contents(d, "a", SIZE)[:4096] == b"a" * 4096,
      "'a' written back to 'a'")
# Without a default export every export is written back through its
# connections' own contexts.
srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d])
h = srv.connect("a")
h.pwrite(b"A" * 4096, 0)
h.shutdown()
srv.stop()
check(sharded_file_contents(d, "a", SIZE)[:4096] == b"A" * 4096,
      "without a default export 'a' is written back to 'a'")

# Extents: a block with data not yet written back is data, although the
# plugin still has a hole there; untouched blocks are the plugin's holes.
d = tmpdir()
srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d,
              "export=vol", "size=%d" % SIZE, "writeback-delay=60"])
h = srv.connect()
h.pwrite(b"\x01" * 4096, 5 * MiB)


def flags_at(h, off):
    found = []

    def cb(meta, o, ents, err):
        if meta == nbd.CONTEXT_BASE_ALLOCATION:
            found.append(ents[1])
    h.block_status(4096, off, cb)
    return found[0]


check(flags_at(h, 5 * MiB) & nbd.STATE_HOLE == 0, "dirty block is data")
check(flags_at(h, 20 * MiB) & nbd.STATE_HOLE, "untouched block is a hole")
h.flush()
check(flags_at(h, 5 * MiB) & nbd.STATE_HOLE == 0, "written block is data")
h.shutdown()
srv.stop()
print("ok")
