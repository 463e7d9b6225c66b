"""sharded-file: data survives restarts.  Written, flushed and stopped
data reads back after a restart; a FUA write survives nbdkit being killed
(SIGKILL) right after the reply; and (with strace) a FUA write syncs its
chunk file and, for a new chunk, the directory before the reply, while a
plain write syncs nothing until the flush."""

import os
import random
import shutil
import signal
import stat
import time

import nbd

from shardkit_test import (NBDKIT, Server, VALGRIND, check, seed_from_env,
                           tmpdir)

MiB = 1024 * 1024
SIZE = 64 * MiB + 4096
seed = seed_from_env()
rng = random.Random(seed)
d = tmpdir()
args = ["sharded-file", "dir=" + d, "export=p", "size=%d" % SIZE]


def read_all(h):
    return b"".join(h.pread(min(32 * MiB, SIZE - o), o)
                    for o in range(0, SIZE, 32 * MiB))


def meta():
    with open(os.path.join(d, "p.meta")) as f:
        return f.read()


# 1. Write, flush, stop cleanly, restart, read back.
expect = bytearray(SIZE)
srv = Server(args)
h = srv.connect()
for _ in range(40):
    n = rng.randint(1, 3 * MiB)
    off = rng.randrange(SIZE - n)
    data = rng.randbytes(n)
    h.pwrite(data, off)
    expect[off:off + n] = data
h.trim(5 * MiB, 20 * MiB + 123)
expect[20 * MiB + 123:25 * MiB + 123] = bytes(5 * MiB)
h.pwrite(b"the end", SIZE - 7)              # the short last chunk
expect[SIZE - 7:] = b"the end"
h.flush()
h.shutdown()
meta_before = meta()
check(srv.stop() == 0, "clean stop")

# Restart without size=: the existing volume is opened as it is.
srv = Server(["sharded-file", "dir=" + d, "export=p"])
h = srv.connect()
check(h.get_size() == SIZE, "size after restart")
check(read_all(h) == expect, "data after a restart")
check(meta() == meta_before, "metadata unchanged by serving")
# And with size= given again (it matches): nothing changes either.
h.shutdown()
srv.stop()
srv = Server(args)
h = srv.connect()
check(read_all(h) == expect, "data after a restart with size=")

# 2. FUA writes survive a kill of nbdkit straight after the reply.
for i in range(8):
    off = rng.randrange(SIZE - MiB)
    data = rng.randbytes(rng.randint(1, MiB))
    h.pwrite(data, off, nbd.CMD_FLAG_FUA)
    expect[off:off + len(data)] = data
h.trim(4096, 0, nbd.CMD_FLAG_FUA)
expect[0:4096] = bytes(4096)
h.zero(MiB, 30 * MiB, nbd.CMD_FLAG_FUA)
expect[30 * MiB:31 * MiB] = bytes(MiB)
srv.kill()
srv = Server(["sharded-file", "dir=" + d, "export=p"])
h = srv.connect()
check(read_all(h) == expect, "FUA data after SIGKILL")
h.shutdown()
srv.stop()

# 3. Which syncs happen when (strace -y names the file of each fd).
strace = shutil.which("strace")
if VALGRIND or strace is None:
    print("strace part skipped (%s)" %
          ("under valgrind" if VALGRIND else "no strace: apt-get install strace"))
    print("ok")
    raise SystemExit(0)

wrap_dir = tmpdir()
trace = os.path.join(wrap_dir, "trace.log")
wrapper = os.path.join(wrap_dir, "nbdkit-strace")
with open(wrapper, "w") as f:
    f.write("#!/bin/sh\nexec %s -f -qq -y -e trace=fsync,fdatasync,sync_file_range "
            "-o %s %s \"$@\"\n" % (strace, trace, NBDKIT))
os.chmod(wrapper, stat.S_IRWXU)

pidfile = os.path.join(wrap_dir, "nbdkit.pid")
srv = Server(["-P", pidfile, "sharded-file", "dir=" + d, "export=p"],
             nbdkit=wrapper)
h = srv.connect()


def syncs_during(fn):
    """The sync calls made while FN runs (strace writes each line when the
    call returns, before the reply goes out)."""
    before = open(trace).read().count("\n")
    fn()
    time.sleep(0.05)
    lines = open(trace).read().splitlines()[before:]
    return [l for l in lines if "sync" in l]


chunk = 4 * MiB
h.trim(2 * chunk, 14 * chunk)
h.flush()
# A FUA write to a chunk that does not exist yet: the chunk and the
# directory are synced before the reply.
check(not os.path.exists(os.path.join(d, "p.15.chunk")), "chunk 15 absent")
s = syncs_during(lambda: h.pwrite(b"fua", 15 * chunk + 10, nbd.CMD_FLAG_FUA))
check(any("fdatasync" in l and "p.15.chunk" in l for l in s) or
      any("fsync" in l and "p.15.chunk" in l for l in s),
      "FUA write synced its chunk: %s" % s)
check(any("fsync" in l and ("<%s>" % os.path.realpath(d)) in l for l in s),
      "FUA write of a new chunk synced the directory: %s" % s)
# A plain write: no sync at all, then the flush syncs the chunk and the
# directory entry of the new file.
s = syncs_during(lambda: h.pwrite(b"plain", 14 * chunk + 10))
check(s == [], "a plain write synced nothing: %s" % s)
s = syncs_during(h.flush)
check(any("p.14.chunk" in l for l in s), "flush synced chunk 14: %s" % s)
check(any(("<%s>" % os.path.realpath(d)) in l for l in s),
      "flush synced the directory (new chunk file): %s" % s)
# A FUA trim that removes a chunk syncs the directory.
s = syncs_during(lambda: h.trim(chunk, 15 * chunk, nbd.CMD_FLAG_FUA))
check(not os.path.exists(os.path.join(d, "p.15.chunk")), "chunk 15 removed")
check(any(("<%s>" % os.path.realpath(d)) in l for l in s),
      "FUA trim synced the directory: %s" % s)
h.shutdown()
# SIGTERM to nbdkit itself (strace would only detach); strace then exits.
os.kill(int(open(pidfile).read()), signal.SIGTERM)
srv.proc.wait(20)

# With max-open-files=2, written chunks are closed (evicted) long before
# the flush: each must still be synced after its last write and before
# the flush returns (at its eviction, which never closes a descriptor
# with unsynced writes, or by the flush).
srv = Server(["-P", pidfile, "sharded-file", "dir=" + d, "export=p",
              "max-open-files=2"], nbdkit=wrapper)
h = srv.connect()
h.trim(SIZE, 0)
h.flush()
written = list(range(0, 16, 2))
for n in written:
    h.pwrite(b"evicted %d" % n, n * chunk + 4096 * n)
mark = {}
for n in written:
    time.sleep(0.05)                # strace has written the lines so far
    mark[n] = open(trace).read().count("\n")
    h.pwrite(b"again %d" % n, n * chunk + 4096 * n + 100)   # dirty twice
h.flush()
time.sleep(0.05)
lines = open(trace).read().splitlines()
for n in written:
    s = [l for l in lines[mark[n]:] if "sync" in l]
    check(any("p.%d.chunk>" % n in l and "fdatasync" in l for l in s),
          "evicted chunk %d synced after its last write, before the flush "
          "returned: %s" % (n, s))
h.shutdown()
os.kill(int(open(pidfile).read()), signal.SIGTERM)
srv.proc.wait(20)
srv = Server(["sharded-file", "dir=" + d, "export=p"])
h = srv.connect()
for n in written:
    want = bytearray(b"evicted %d" % n)
    got = h.pread(100 + len(b"again %d" % n), n * chunk + 4096 * n)
    check(got[:len(want)] == want and
          got[100:] == b"again %d" % n, "evicted chunk %d data" % n)
h.shutdown()
srv.stop()
print("ok")
