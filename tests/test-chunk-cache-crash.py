"""chunk-cache with durability=local over sharded-file: kill -9 nbdkit at
random moments during heavy writes; after a restart with the same
cache-dir (which writes back what the crash left dirty) every write
acknowledged before the last acknowledged flush is in the plugin.
Writes after that flush may or may not be there, page by page."""

import os
import random
import threading
import time

import nbd

from chunk_cache_util import KiB, MiB, read_all, sharded_file_contents
from shardkit_test import Server, check, seed_from_env, tmpdir

seed = seed_from_env()
rng = random.Random(seed)
SIZE = 16 * MiB
PAGE = 4 * KiB
ROUNDS = 4

d = tmpdir()
cd = tmpdir()
common = ["cache-dir=" + cd, "durability=local", "cache-block-size=256K"]

# Create the volume.
Server(["sharded-file", "dir=" + d, "export=vol", "size=%d" % SIZE,
        "chunk-size=1M"]).stop()

flushed = bytearray(SIZE)           # contents at the last acked flush
rounds_with_dirty = 0

for rnd in range(ROUNDS):
    # A slow plugin (delay filter under the cache) so that dirty data
    # piles up; write-back starts quickly.
    srv = Server(["--filter=chunk-cache", "--filter=delay", "sharded-file",
                  "dir=" + d, "export=vol", "delay-write=15ms",
                  "writeback-delay=0.1", "writeback-threads=4"] + common)
    h = srv.connect()
    cur = bytearray(flushed)
    post = {}                       # page -> versions written since flush
    kill_after = rng.uniform(0.5, 2.5)
    killer = threading.Timer(kill_after, srv.kill)
    killer.start()
    nwrites = nflushes = 0
    try:
        while True:
            if rng.random() < 0.1:
                h.flush()
                flushed[:] = cur
                post.clear()
                nflushes += 1
                continue
            n = rng.randrange(1, 128) * PAGE
            off = rng.randrange(0, (SIZE - n) // PAGE + 1) * PAGE
            buf = rng.randbytes(n)
            # Recorded before it is sent: it may land although never acked.
            for p in range(off // PAGE, (off + n) // PAGE):
                post.setdefault(p, []).append(
                    buf[p * PAGE - off:(p + 1) * PAGE - off])
            h.pwrite(buf, off)
            cur[off:off + n] = buf
            nwrites += 1
    except nbd.Error:
        pass                        # the server is gone
    killer.join()
    del h
    with open(os.path.join(cd, "cache.index"), "rb") as f:
        dirty = sum(1 for b in f.read() if b in (2, 3))
    if dirty:
        rounds_with_dirty += 1
    print("round %d: killed after %.2fs, %d writes, %d flushes, %d dirty "
          "blocks in the index" % (rnd, kill_after, nwrites, nflushes, dirty),
          flush=True)

    # Restart with the same cache-dir: the dirty blocks are written back.
    # Read everything through the cache, then stop cleanly.
    srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d,
                  "export=vol"] + common)
    h = srv.connect()
    via_cache = read_all(h, SIZE)
    h.shutdown()
    srv.stop()
    got = sharded_file_contents(d, "vol", SIZE)
    check(got == via_cache, "round %d: the plugin differs from what the "
          "cache served after recovery" % rnd)
    bad = []
    for p in range(SIZE // PAGE):
        page = got[p * PAGE:(p + 1) * PAGE]
        if page != flushed[p * PAGE:(p + 1) * PAGE] and \
           page not in post.get(p, []):
            bad.append(p)
    check(not bad, "round %d: %d pages lost flushed data (first at %d)"
          % (rnd, len(bad), bad[0] * PAGE if bad else -1))
    flushed[:] = got

# A crash of the machine, simulated: after kill -9 the header says the
# cache was last opened under another boot id.  Then only what a flush
# synced is trusted: it is written back; a write no flush covered is
# dropped (the plugin keeps its old data there, as a disk may lose
# unflushed writes), and so are clean blocks.
d2 = tmpdir()
cd2 = tmpdir()
args = ["--filter=chunk-cache", "sharded-file", "dir=" + d2, "export=vol",
        "size=%d" % SIZE, "cache-dir=" + cd2, "durability=local",
        "cache-block-size=1M"]
srv = Server(args + ["writeback-delay=60"])
h = srv.connect()
a = rng.randbytes(MiB)
h.pwrite(a, 0)
h.flush()                              # synced in cache-dir only
h.pwrite(rng.randbytes(MiB), 5 * MiB)  # never flushed
srv.kill()
meta = os.path.join(cd2, "cache.meta")
with open(meta) as f:
    text = f.read()
text = "".join(("boot-id=00000000-0000-0000-0000-000000000000\n"
                if line.startswith("boot-id=") else line + "\n")
               for line in text.splitlines())
with open(meta, "w") as f:
    f.write(text)
srv = Server(args[:-3] + ["cache-dir=" + cd2, "cache-block-size=1M"])
srv.stop()
check("1 dropped after a machine crash" in srv.output(),
      "the unflushed dirty block was dropped")
got = sharded_file_contents(d2, "vol", SIZE)
check(got[:MiB] == a, "flushed (synced) block written back after the crash")
check(got[5 * MiB:6 * MiB] == bytes(MiB), "unflushed block dropped")

# FUA: a FUA write is safe on its own, without a flush, under both
# durabilities (remote: in the plugin at once; local: written back after
# the restart).
for dur in ("remote", "local"):
    d3 = tmpdir()
    cd3 = tmpdir()
    args = ["--filter=chunk-cache", "sharded-file", "dir=" + d3,
            "export=vol", "size=%d" % SIZE, "cache-dir=" + cd3,
            "durability=" + dur]
    srv = Server(args + ["writeback-delay=60"])
    h = srv.connect()
    fua = rng.randbytes(3 * MiB)
    h.pwrite(fua, 2 * MiB + 4096, nbd.CMD_FLAG_FUA)
    h.pwrite(rng.randbytes(MiB), 9 * MiB)      # not FUA, may be lost
    srv.kill()
    if dur == "remote":
        got = sharded_file_contents(d3, "vol", SIZE)
    else:
        Server(args).stop()                   # recovery
        got = sharded_file_contents(d3, "vol", SIZE)
    check(got[2 * MiB + 4096:5 * MiB + 4096] == fua,
          "FUA write safe with durability=%s" % dur)

check(rounds_with_dirty > 0, "no round was killed with dirty blocks: the "
      "test proved nothing")
print("ok")
