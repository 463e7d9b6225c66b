"""chunk-cache: writeback-delay= waits for a block to be left alone, and
writeback-max-age= bounds how long a busy block waits.

A block written every 50 ms (never idle for writeback-delay=2) is
written back once it has been dirty for writeback-max-age=4: the first
write reaches the plugin no earlier than that (the rewrites held it
back) and no later than that plus a margin for a loaded machine; and in
the whole busy period the block is written back about once per max age,
not once per delay.  A block written once and then left alone goes after
the delay, long before the max age.  Finally everything written is in
the plugin.  The plugin's chunk files are read directly from disk, so
nothing passes through nbdkit to look."""

import os
import random
import threading
import time

from chunk_cache_util import KiB, MiB, fresh_stats, sharded_file_contents
from shardkit_test import Server, check, seed_from_env, tmpdir

rng = random.Random(seed_from_env())
SIZE = 8 * MiB
BS = MiB
DELAY = 2.0
MAX_AGE = 4.0
MARGIN = 4.0          # a loaded 2-core machine may be this late
BUSY = 10.0           # seconds of rewrites of block 0

d = tmpdir()
st = tmpdir() + "/stats"
srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d,
              "export=vol", "size=%d" % SIZE, "cache-block-size=1M",
              "cache-dir=" + tmpdir(), "writeback-delay=%g" % DELAY,
              "writeback-max-age=%g" % MAX_AGE, "stats-file=" + st,
              "stats-interval=0.1", "readahead=0"])
h = srv.connect()
model = bytearray(SIZE)


def on_disk(off, n):
    """Bytes OFF..OFF+N of the volume as its chunk file holds them now
    (chunks are 4 MiB by default; a missing chunk or a hole is zeros)."""
    path = os.path.join(d, "vol.%d.chunk" % (off // (4 * MiB)))
    try:
        with open(path, "rb") as f:
            f.seek(off % (4 * MiB))
            got = f.read(n)
    except FileNotFoundError:
        got = b""
    return got + bytes(n - len(got))


def wait_on_disk(off, data, until):
    """Poll until the chunk file holds DATA at OFF; returns the time it
    was first seen, or None at UNTIL."""
    while time.monotonic() < until:
        if on_disk(off, len(data)) == data:
            return time.monotonic()
        time.sleep(0.02)
    return None


def write(off, data):
    h.pwrite(data, off)
    model[off:off + len(data)] = data


# Block 0 kept busy: a marker at its start, then 4 KiB rewrites of the
# rest of it every 50 ms from another thread, the gaps between them
# recorded (a stall as long as the delay would let it go early).
marker = b"first write " + rng.randbytes(52)
written_back_before = fresh_stats(st)["written-back"]
t0 = time.monotonic()
write(0, marker)
gaps = []
stop = threading.Event()


def rewrite():
    last = time.monotonic()
    while not stop.is_set():
        off = rng.randrange(1, BS // (4 * KiB)) * 4 * KiB
        write(off, rng.randbytes(4 * KiB))
        now = time.monotonic()
        gaps.append(now - last)
        last = now
        time.sleep(0.05)


rewriter = threading.Thread(target=rewrite)
rewriter.start()
try:
    seen = wait_on_disk(0, marker, t0 + MAX_AGE + MARGIN)
    # Keep it busy to the end of the period, then count write-backs.
    while time.monotonic() < t0 + BUSY:
        time.sleep(0.1)
finally:
    stop.set()
    rewriter.join()
busy_end = time.monotonic()
written_back = fresh_stats(st)["written-back"] - written_back_before

check(seen is not None,
      "block 0, rewritten every 50 ms, was not written back within "
      "writeback-max-age=%g (+%gs margin)" % (MAX_AGE, MARGIN))
age = seen - t0
longest = max(gaps)
print("busy block written back after %.2fs (max age %g); %d write-backs "
      "in %.1fs; longest gap between rewrites %.2fs"
      % (age, MAX_AGE, written_back, busy_end - t0, longest))
if longest < DELAY - 0.5:
    # Never idle for the delay: only the max age can have let it go.
    check(age >= MAX_AGE - 0.3,
          "block 0 was written back after %.2fs although rewritten every "
          "50 ms: writeback-delay=%g did not wait for it to be left alone"
          % (age, DELAY))
    # Once per max age (plus the last one after the rewrites stopped
    # may already have started), never once per delay.
    most = int((busy_end - t0) / MAX_AGE) + 1
    check(written_back <= most,
          "%d write-backs of a block kept busy for %.1fs: expected at most "
          "%d with writeback-max-age=%g" % (written_back, busy_end - t0,
                                            most, MAX_AGE))
else:
    print("(a stall of %.2fs between rewrites: the lower bounds are not "
          "checked)" % longest)

# Block 5 written once and left alone: written back after the delay,
# well before the max age would force it.
quiet = rng.randbytes(64 * KiB)
t1 = time.monotonic()
write(5 * MiB, quiet)
seen = wait_on_disk(5 * MiB, quiet, t1 + DELAY + MARGIN)
check(seen is not None, "block 5, written once, was not written back "
      "within writeback-delay=%g (+%gs margin)" % (DELAY, MARGIN))
check(seen - t1 >= DELAY - 0.3,
      "block 5 was written back %.2fs after its write, before "
      "writeback-delay=%g" % (seen - t1, DELAY))

h.flush()
h.shutdown()
srv.stop()
check(sharded_file_contents(d, "vol", SIZE) == bytes(model),
      "the volume differs from what was written")
print("ok")
