"""retry-backoff under chunk-cache: chunk-cache -> retry-backoff ->
nbdkit's error filter (20% of plugin writes fail with EIO) -> memory,
then sharded-file, where the plugin's flush also fails (fdatasync fails
with EIO, through the fault-inject preload, until the filter has retried
it; nbdkit 1.32's error filter cannot fail flushes).  The retries recover every write-back and
flush, so chunk-cache must see no failure at all (a recovered request
used to hand back the first attempt's errno, and chunk-cache counted it
as a failed write-back): the client's writes and flush succeed, the
stats show no write-back error, and the data is intact (read back through
the stack for memory, from the files on disk for sharded-file)."""

import os
import random
import re

import nbd

from chunk_cache_util import fresh_stats, sharded_file_contents
from shardkit_test import Server, check, fail, seed_from_env, tmpdir

seed = seed_from_env()
rng = random.Random(seed)
SIZE = 8 * 1024 * 1024
BS = 65536
NWRITES = 50


def run(name, plugin_args, size=SIZE, fail_flush=None):
    t = tmpdir()
    stats = os.path.join(t, "stats")
    srv = Server(["--filter=chunk-cache", "--filter=retry-backoff",
                  "--filter=error"] + plugin_args +
                 ["error-pwrite-rate=20%",
                  "error=EIO",
                  "retry-delay=1ms", "retry-max-delay=20ms",
                  "cache-block-size=64K", "writeback-delay=0",
                  "stats-file=" + stats, "stats-interval=0.1"])
    h = srv.connect()
    model = bytearray(size)
    for i in range(NWRITES):
        data = rng.randbytes(BS)
        off = rng.randrange(0, size // BS) * BS
        h.pwrite(data, off)
        model[off:off + BS] = data
    if fail_flush:
        # The plugin's next 3 flushes fail (retried: default retries=8).
        for i in range(3):
            open(os.path.join(fail_flush, "fail-flush.%d" % i), "w").close()
    try:
        h.flush()
    except nbd.Error as e:
        fail("%s: flush failed although every failure below was retried "
             "away: %s (seed %d)" % (name, e, seed))
    st = fresh_stats(stats)
    check(st["writeback-errors"] == 0,
          "%s: chunk-cache counted %d write-back errors (seed %d)"
          % (name, st["writeback-errors"], seed))
    check(h.pread(size, 0) == model, "%s: data differs after flush" % name)
    h.shutdown()
    out = srv.output()
    srv.stop()
    injected = len(re.findall(r"error: injecting EIO error", out))
    recovered = len(re.findall(r"retry-backoff: .* failed: EIO; retry", out))
    flushes = len(re.findall(r"retry-backoff: flush failed: EIO; retry", out))
    print("%s: %d write errors injected, %d retries (%d of flushes), "
          "write-back errors %d" % (name, injected, recovered, flushes,
                                    st["writeback-errors"]), flush=True)
    check(injected > 0 and recovered > 0,
          "%s: no error was injected and retried" % name)
    check(flushes >= 3 or not fail_flush,
          "%s: %d failed flushes retried, expected 3" % (name, flushes))
    return model


run("memory", ["memory", "size=%d" % SIZE])

d = tmpdir()
model = run("sharded-file", ["sharded-file", "dir=" + d, "export=vol",
                             "size=%d" % SIZE])
check(sharded_file_contents(d, "vol", SIZE) == bytes(model),
      "sharded-file: the files on disk differ from what was written")

# nbdkit 1.32's error filter cannot fail flushes: a disk file served by
# nbdkit's eval plugin whose next 3 flushes fail (each removes one
# fail-flush.N file, so that parallel flushes do not race), 20% of writes
# failing still (error filter); then the disk file must hold the data.
FLAKY_SIZE = 1024 * 1024
fd = tmpdir("shardkit-flaky-")
disk = os.path.join(fd, "disk")
with open(disk, "wb") as f:
    f.write(bytes(FLAKY_SIZE))
model = run("eval with failing flushes", [
    "eval",
    "thread_model=echo parallel",
    "get_size=stat -c %%s %s" % disk,
    "can_write=exit 0", "can_flush=exit 0",
    "pread=dd if=%s skip=$4 count=$3 iflag=skip_bytes,count_bytes "
    "status=none" % disk,
    "pwrite=dd of=%s seek=$4 oflag=seek_bytes conv=notrunc status=none"
    % disk,
    "flush=for f in %s/fail-flush.*; do if rm \"$f\" 2>/dev/null; then "
    "echo EIO injected flush failure >&2; exit 1; fi; done; exit 0" % fd],
    size=FLAKY_SIZE, fail_flush=fd)
with open(disk, "rb") as f:
    check(f.read() == bytes(model), "eval: the disk file differs")
print("ok")
