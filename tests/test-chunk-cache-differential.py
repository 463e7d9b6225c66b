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


# The workers' plugin context belongs to no connection, and there nbdkit
# 1.32 gives a plugin no export name: a plugin that picks its volume by
# the client's export name opens its default volume (or none) for the
# cache.  A client asking for another volume is refused with a hint
# (never cached, never written back to the wrong volume), and the server
# goes on serving its default export.
d = tmpdir()
cd = tmpdir()
for name in ("a", "b"):
    Server(["sharded-file", "dir=" + d, "export=" + name,
            "size=%d" % SIZE]).stop()
srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d,
              "export=a", "cache-dir=" + cd])
try:
    srv.connect("b")
    check(False, "export 'b' served through the write-back context of 'a'")
except nbd.Error:
    pass
check("serve the volume as the plugin's default export" in srv.output(),
      "the refusal says what to do")
check(not os.path.exists(os.path.join(cd, "cache.meta")),
      "the refused export left no cache header")
h = srv.connect()                      # the default export, 'a'
h.pwrite(b"a" * 4096, 0)
h.shutdown()
srv.stop()
check(sharded_file_contents(d, "b", SIZE)[:4096] == bytes(4096),
      "nothing written to 'b'")
check(sharded_file_contents(d, "a", SIZE)[:4096] == b"a" * 4096,
      "written to 'a'")
# Without a default export the plugin cannot be opened for the cache.
srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d])
try:
    srv.connect("a")
    check(False, "export 'a' served without a default export")
except nbd.Error:
    pass
srv.stop()
check("serve the volume as the plugin's default export" in srv.output(),
      "the refusal says what to do (no default export)")

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
