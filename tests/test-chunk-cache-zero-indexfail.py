"""chunk-cache: a trim or zero never gives back the data of a clean block
whose index byte could not be cleared.

Zeroing or trimming a cached clean block first clears its byte in
cache.index (its copy no longer counts), then punches the range out of
cache.data, then sends the request to the plugin.  When that index write
fails (injected EIO, tests/fault-inject.c) the file still counts the block
as cached: punching its data then, with the plugin's trim failing too
(nbdkit's error filter) or nbdkit crashing before the plugin is trimmed,
leaves zeros that the restarted cache trusts and serves as the block.
The request must fail instead, with the cached copy left alone."""

import os
import random

import nbd

from chunk_cache_util import MiB, read_all
from shardkit_test import Server, check, fault_injector, seed_from_env, tmpdir

shim, faults = fault_injector()

rng = random.Random(seed_from_env())
SIZE = 4 * MiB
BS = MiB
d = tmpdir()
cd = tmpdir()
errfile = os.path.join(tmpdir(), "errors-on")
plugin = ["sharded-file", "dir=" + d, "export=vol", "size=%d" % SIZE]
args = ["--filter=chunk-cache", "--filter=error"] + plugin + [
    "cache-dir=" + cd, "cache-block-size=1M", "readahead=0",
    "error=EIO", "error-trim-rate=100%", "error-zero-rate=100%",
    "error-file=" + errfile]

data = rng.randbytes(SIZE)
srv = Server(plugin)
h = srv.connect()
h.pwrite(data, 0)
h.flush()
h.shutdown()
srv.stop()

fail = os.path.join(faults, "fail-pwrite")
srv = Server(args, env={"LD_PRELOAD": shim, "SHARDKIT_FAULT_DIR": faults})
h = srv.connect()
check(read_all(h, SIZE) == data, "the volume reads right (all cached)")
with open(fail, "w") as f:
    f.write("cache.index")
open(errfile, "w").close()
for what, op in (("trim", lambda: h.trim(BS, 0)),
                 ("zero", lambda: h.zero(BS, BS)),
                 ("partial zero", lambda: h.zero(4096, 2 * BS + 8192))):
    try:
        op()
        failed = False
    except nbd.Error as e:
        failed = True
        print("%s failed as expected: %s" % (what, e), flush=True)
    check(failed, "%s with cache.index failing succeeded" % what)
# No read here: a read of a block dropped from the cache would fetch it
# again and hide the hole.
srv.kill()                              # a crash
os.unlink(fail)
os.unlink(errfile)

with open(os.path.join(cd, "cache.index"), "rb") as f:
    idx = f.read()
with open(os.path.join(cd, "cache.data"), "rb") as f:
    cached = f.read()
print("index bytes after the crash: %r" % list(idx), flush=True)
for b in range(SIZE // BS):
    blk = cached[b * BS:(b + 1) * BS]
    check(idx[b] != 1 or blk == data[b * BS:(b + 1) * BS],
          "cache.index counts block %d as cached but its data in "
          "cache.data was %s" % (b, "punched out" if blk !=
                                 data[b * BS:(b + 1) * BS] else "changed"))

srv = Server(args)
h = srv.connect()
check(read_all(h, SIZE) == data, "after the restart the volume reads right")
h.shutdown()
srv.stop()
print("ok")
