"""chunk-cache when its own cache-dir fails writes (a full disk):

1. An index update that fails (injected ENOSPC, tests/fault-inject.c)
   during a durability=local flush must fail that flush: a flush reported
   as done means the data survives a crash of the machine (simulated as
   in test-chunk-cache-crash.py: kill -9, then another boot id).
2. A cache-dir on a tiny tmpfs that fills up (cache-size= not set):
   clean blocks are dropped to make room, so reads and writes keep
   working and the plugin ends up with every write; in
   cache-mode=writethrough a copy that does not fit is just dropped."""

import os
import random
import subprocess

import nbd

from chunk_cache_util import MiB, read_all, sharded_file_contents
from shardkit_test import (Server, check, fault_injector, on_exit,
                           seed_from_env, tmpdir)

shim, faults = fault_injector()

rng = random.Random(seed_from_env())
SIZE = 8 * MiB
enospc = os.path.join(faults, "enospc-pwrite")

# 1. A flush whose index update fails must not succeed.
d = tmpdir()
cd = tmpdir()
args = ["--filter=chunk-cache", "sharded-file", "dir=" + d, "export=vol",
        "size=%d" % SIZE, "cache-dir=" + cd, "durability=local",
        "cache-block-size=1M"]
env = {"LD_PRELOAD": shim, "SHARDKIT_FAULT_DIR": faults}
srv = Server(args + ["writeback-delay=600"], env=env)
h = srv.connect()
a = rng.randbytes(MiB)
h.pwrite(a, 0)
open(enospc, "w").close()               # the cache's disk is full now
try:
    h.flush()
    flushed = True
except nbd.Error:
    flushed = False
os.unlink(enospc)
print("flush with a failing index write: %s"
      % ("succeeded" if flushed else "failed"), flush=True)
if not flushed:
    h.flush()                           # space again: now it is safe
srv.kill()
meta = os.path.join(cd, "cache.meta")
with open(meta) as f:
    text = f.read()
text = "".join(("boot-id=00000000-0000-0000-0000-000000000000\n"
                if line.startswith("boot-id=") else line + "\n")
               for line in text.splitlines())
with open(meta, "w") as f:
    f.write(text)
Server(args).stop()                     # recovery writes back, then exits
got = sharded_file_contents(d, "vol", SIZE)
check(got[:MiB] == a,
      "a write covered by a flush that %s was lost after a machine crash"
      % ("succeeded" if flushed else "failed, then succeeded"))

# 2. A cache-dir on a tiny tmpfs.
mnt = tmpdir()
if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt],
                  stderr=subprocess.DEVNULL).returncode != 0:
    print("cannot mount a tmpfs here: part 2 skipped", flush=True)
    raise SystemExit(0)
on_exit(lambda: subprocess.run(["umount", "-l", mnt]))
SIZE2 = 16 * MiB
d2 = tmpdir()
Server(["sharded-file", "dir=" + d2, "export=v", "size=%d" % SIZE2]).stop()
seed = rng.randbytes(SIZE2)
srv = Server(["sharded-file", "dir=" + d2, "export=v"])
h = srv.connect()
h.pwrite(seed, 0)
h.flush()
h.shutdown()
srv.stop()

srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d2,
              "export=v", "cache-dir=" + mnt, "cache-block-size=1M",
              "writeback-delay=0", "readahead=0"])
h = srv.connect()
try:
    got = read_all(h, SIZE2, step=MiB)
except nbd.Error as e:
    got = None
    print("read with a full cache-dir failed: %s" % e, flush=True)
check(got == seed, "reads with a full cache-dir return the plugin's data")
model = bytearray(seed)
# Writes each followed by a flush (so that no more than two blocks are
# dirty at once): clean blocks make room, every write must land.
for i in range(16):
    n = rng.choice([4096, 64 * 1024, MiB // 2, MiB])
    off = rng.randrange(0, (SIZE2 - n) // 4096 + 1) * 4096
    buf = rng.randbytes(n)
    try:
        h.pwrite(buf, off)
        h.flush()
    except nbd.Error as e:
        check(False, "write %d (%d@%d) with a full cache-dir: %s"
              % (i, n, off, e))
    model[off:off + n] = buf
check(read_all(h, SIZE2, step=MiB) == model, "reads after the writes")
h.shutdown()
srv.stop()
check(sharded_file_contents(d2, "v", SIZE2) == model,
      "the plugin holds every write")

# 3. cache-mode=writethrough on the same full tmpfs: the plugin takes
# every write; a copy the cache cannot store is dropped, not an error.
for f in os.listdir(mnt):
    os.unlink(os.path.join(mnt, f))
srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d2,
              "export=v", "cache-dir=" + mnt, "cache-block-size=1M",
              "cache-mode=writethrough", "readahead=0"])
h = srv.connect()
for i in range(SIZE2 // MiB):
    buf = rng.randbytes(MiB)
    try:
        h.pwrite(buf, i * MiB)
    except nbd.Error as e:
        check(False, "writethrough: write of block %d with a full "
              "cache-dir: %s" % (i, e))
    model[i * MiB:(i + 1) * MiB] = buf
check(read_all(h, SIZE2, step=MiB) == model, "writethrough: reads")
h.shutdown()
srv.stop()
check(sharded_file_contents(d2, "v", SIZE2) == model,
      "writethrough: the plugin holds every write")
