"""chunk-cache durability=local after a failed fdatasync in cache-dir
(injected EIO, tests/fault-inject.c): that flush fails, and since Linux
may drop the unsynced pages and let a later fdatasync succeed without
them, later flushes no longer trust local syncs: they return only once
the data is in the plugin (checked after kill -9, reading the plugin
alone)."""

import os
import random

import nbd

from chunk_cache_util import MiB, sharded_file_contents
from shardkit_test import (Server, check, fault_injector, seed_from_env,
                           tmpdir)

shim, faults = fault_injector()

rng = random.Random(seed_from_env())
SIZE = 8 * MiB
failsync = os.path.join(faults, "fail-fdatasync")
d = tmpdir()
cd = tmpdir()
srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d,
              "export=vol", "size=%d" % SIZE, "cache-dir=" + cd,
              "durability=local", "cache-block-size=1M",
              "writeback-delay=600"],
             env={"LD_PRELOAD": shim, "SHARDKIT_FAULT_DIR": faults})
h = srv.connect()
a = rng.randbytes(MiB)
b = rng.randbytes(MiB)
h.pwrite(a, 0)
open(failsync, "w").close()
try:
    h.flush()
    check(False, "a flush whose fdatasync failed succeeded")
except nbd.Error:
    pass
os.unlink(failsync)
h.pwrite(b, 3 * MiB)
h.flush()                               # must not trust the local sync
srv.kill()
got = sharded_file_contents(d, "vol", SIZE)
check(got[:MiB] == a, "the write before the failed sync is in the plugin")
check(got[3 * MiB:4 * MiB] == b, "the write after it is in the plugin")
