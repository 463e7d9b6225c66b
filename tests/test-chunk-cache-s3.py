"""chunk-cache over s3-object on Ceph's RADOS Gateway: seeded random
operations on several connections through the cache, checked against a
model; after a flush and kill -9 the bucket alone (s3-object without the
cache) holds everything; a restart with the same cache-dir serves warm
reads without a single plugin read (nbdkit's stats filter under the
cache)."""

import random

from chunk_cache_util import (MiB, Model, first_difference,
                              nbdkit_stats_reads, random_ops, read_all)
from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check, seed_from_env, tmpdir

need_s3_object_plugin()
seed = seed_from_env()
rng = random.Random(seed)
SIZE = 24 * MiB

s3 = CephRGW()
plugin = ["s3-object"] + s3.plugin_args(prefix="cc/") + ["export=vol"]


def plain_contents():
    # Read-only: takes no lease, so it works while the lease of a
    # killed writer has not ended yet.
    srv = Server(plugin, readonly=True)
    h = srv.connect()
    data = read_all(h, SIZE)
    h.shutdown()
    srv.stop()
    return data


# Create the volume.
Server(plugin + ["size=%d" % SIZE, "chunk-size=1M"]).stop()

cd = tmpdir()
srv = Server(["--filter=chunk-cache"] + plugin +
             ["cache-dir=" + cd, "writeback-delay=0.1", "readahead=2",
              "lease-time=10"])
hs = [srv.connect() for _ in range(3)]
check(hs[0].can_multi_conn(), "multi-conn (s3-object has it)")
model = Model(SIZE)
random_ops(rng, hs, model, 150, SIZE, maxlen=2 * MiB)
hs[0].flush()
check(read_all(hs[1], SIZE) == bytes(model.data), "served contents")
srv.kill()
got = plain_contents()
diff = first_difference(got, bytes(model.data))
check(diff is None, "the bucket after flush + kill -9 differs at %s" % diff)

# Warm restart: the cache-dir (left by kill -9, same boot) is trusted;
# reads of the whole disk cost no plugin reads.  The lease of the killed
# server is waited for (it ends within lease-time=10 s).
stats = tmpdir() + "/stats"
srv = Server(["--filter=chunk-cache", "--filter=stats"] + plugin +
             ["cache-dir=" + cd, "statsfile=" + stats, "lease-wait=60"])
h = srv.connect()
check(read_all(h, SIZE) == bytes(model.data), "warm contents")
h.shutdown()
srv.stop()
n = nbdkit_stats_reads(stats)
print("plugin reads for a warm 24 MiB read after restart:", n)
check(n == 0, "warm reads after a restart read the plugin %d times" % n)
print("ok")
