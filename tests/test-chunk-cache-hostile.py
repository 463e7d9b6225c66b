"""chunk-cache: a cache-dir whose files were damaged is refused with a
clear error, never served: cache.data cut short (its blocks would read as
zeros), cache.index cut short or holding bytes that are no state, FIFOs
in place of the files (opening cache.meta hung the start-up), and an
index with blocks in it but no cache.meta (starting afresh would drop
dirty data)."""

import os
import random
import shutil

import nbd

from chunk_cache_util import MiB, read_all
from shardkit_test import Server, check, seed_from_env, start_fails, tmpdir

rng = random.Random(seed_from_env())
SIZE = 8 * MiB
d = tmpdir()
good = tmpdir()
args = ["--filter=chunk-cache", "sharded-file", "dir=" + d, "export=vol",
        "size=%d" % SIZE, "cache-block-size=1M"]

# A warm cache-dir: every block cached (clean), one written at the end.
srv = Server(args + ["cache-dir=" + good])
h = srv.connect()
h.pwrite(rng.randbytes(SIZE), 0)
h.flush()
data = read_all(h, SIZE)
h.shutdown()
srv.stop()


def damaged(fn):
    cd = tmpdir()
    shutil.rmtree(cd)
    shutil.copytree(good, cd)
    os.unlink(os.path.join(cd, "cache.lock"))
    fn(cd)
    return cd


def truncate(name, n):
    def fn(cd):
        os.truncate(os.path.join(cd, name), n)
    return fn


def poke(cd):
    with open(os.path.join(cd, "cache.index"), "r+b") as f:
        f.seek(3)
        f.write(b"\x7f")


def fifo(name):
    def fn(cd):
        os.unlink(os.path.join(cd, name))
        os.mkfifo(os.path.join(cd, name))
    return fn


for what, fn, word in (("cache.data cut short", truncate("cache.data", MiB),
                        "cache.data"),
                       ("cache.meta a FIFO", fifo("cache.meta"),
                        "not a regular file"),
                       ("cache.data a FIFO", fifo("cache.data"),
                        "not a regular file"),
                       ("cache.index cut short",
                        truncate("cache.index", 3), "cache.index"),
                       ("cache.index corrupt", poke, "corrupt")):
    cd = damaged(fn)
    out = start_fails(args + ["cache-dir=" + cd])
    check(word in out and "refusing" in out,
          "%s: refused with a clear error: %r" % (what, out[-400:]))

# No header, but an index with blocks: the first client is refused, and
# the files are left as they were.
cd = damaged(lambda cd: os.unlink(os.path.join(cd, "cache.meta")))
with open(os.path.join(cd, "cache.index"), "rb") as f:
    before = f.read()
srv = Server(args + ["cache-dir=" + cd])
try:
    h = srv.connect()
    got = read_all(h, SIZE)
    check(False, "a cache-dir without cache.meta was served (%s)"
          % ("same data" if got == data else "other data"))
except nbd.Error:
    pass
srv.stop(check_exit=False)
check("cache.meta is missing" in srv.output(),
      "missing cache.meta: clear error")
with open(os.path.join(cd, "cache.index"), "rb") as f:
    check(f.read() == before, "missing cache.meta: cache.index left alone")

# The undamaged copy still serves the same data without complaint.
srv = Server(args + ["cache-dir=" + good])
h = srv.connect()
check(read_all(h, SIZE) == data, "the intact cache-dir serves its data")
h.shutdown()
srv.stop()
