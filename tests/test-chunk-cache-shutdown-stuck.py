"""chunk-cache: SIGTERM while a writer waits for max-dirty and the plugin
fails every write (nbdkit's error filter below): the waiting write fails
instead of hanging, so nbdkit exits in bounded time, and the
acknowledged dirty data stays in cache-dir and reaches the plugin at the
next start."""

import random
import signal
import threading
import time

import nbd

from chunk_cache_util import MiB, sharded_file_contents
from shardkit_test import Server, VALGRIND, check, seed_from_env, tmpdir

rng = random.Random(seed_from_env())
SIZE = 8 * MiB
d = tmpdir()
cd = tmpdir()
args = ["--filter=chunk-cache", "--filter=error", "sharded-file",
        "dir=" + d, "export=vol", "size=%d" % SIZE, "cache-dir=" + cd,
        "cache-block-size=1M", "max-dirty=1M", "writeback-delay=0",
        "shutdown-timeout=5"]
srv = Server(args + ["error-pwrite-rate=1", "error=EIO"])
h = srv.connect()
a = rng.randbytes(MiB)
h.pwrite(a, 0)                          # acknowledged, can never go below
result = []


def second_write():
    try:
        h.pwrite(rng.randbytes(MiB), MiB)   # waits: max-dirty reached
        result.append("returned")
    except nbd.Error as e:
        result.append("failed: %s" % e)


t = threading.Thread(target=second_write, daemon=True)
t.start()
time.sleep(1)
check(not result, "the second write waits for max-dirty: %r" % result)
srv.proc.send_signal(signal.SIGTERM)
start = time.monotonic()
limit = 90 if VALGRIND else 30
t.join(limit)
check(result and result[0].startswith("failed"),
      "%d s after SIGTERM the write waiting for max-dirty %s"
      % (limit, result[0] if result else "still waits"))
h.shutdown()                            # nbdkit waits for its clients
try:
    srv.proc.wait(timeout=limit)
except Exception:
    check(False, "nbdkit still runs %d s after SIGTERM" % limit)
print("nbdkit exited %.1f s after SIGTERM; the waiting write %s"
      % (time.monotonic() - start, result[0]), flush=True)

# No error filter now: the dirty block is written back at start.
Server(args).stop()
got = sharded_file_contents(d, "vol", SIZE)
check(got[:MiB] == a, "the acknowledged write reached the plugin")
