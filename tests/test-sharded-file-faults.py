"""sharded-file under injected storage faults (tests/fault-inject.c loaded
with LD_PRELOAD): slow and failing fdatasync, a disk that fills up in the
middle of a write, unlink failures, a FIFO in place of metadata.  Checks
that no flush is acknowledged before the data it covers is durable, that
a failed sync is never followed by a false success, and that nothing
acknowledged as trimmed comes back."""

import os
import time

import nbd

from shardkit_test import (Server, check, expect_error, fail, fault_injector,
                           logged_calls, put_state, tmpdir)

shim, faults = fault_injector()

KiB = 1024


def server(d, *extra):
    return Server(["sharded-file", "dir=" + d, "export=a", "size=64M",
                   "chunk-size=64K"] + list(extra),
                  env={"LD_PRELOAD": shim, "SHARDKIT_FAULT_DIR": faults})


# 1. Two flushes on two connections: the second may not return before the
#    first one's fdatasync (which covers the same data) has finished.
d = tmpdir()
srv = server(d)
h1, h2 = srv.connect(), srv.connect()
h1.pwrite(b"A" * 4096, 0)
put_state(faults, "log", on=False)
put_state(faults, "slow-fdatasync", value=1500)
c1 = h1.aio_flush()
time.sleep(0.3)
h2.flush()
f2_done = time.monotonic()
while not h1.aio_command_completed(c1):
    h1.poll(-1)
put_state(faults, "slow-fdatasync", on=False)
syncs = [l for l in logged_calls(faults)
         if l[2] == "fdatasync" and l[3].endswith("a.0.chunk")]
check(syncs, "the chunk was fdatasync'd")
first_end = min(float(l[1]) for l in syncs)
check(f2_done >= first_end - 0.05,
      "second flush returned %.2fs before the data was durable"
      % (first_end - f2_done))
print("concurrent flushes: ok")

# 2. A failed fdatasync: that flush fails, and so does every later one
#    (Linux may have dropped the pages; success would be a lie).
h1.pwrite(b"B" * 4096, 65536)
put_state(faults, "fail-fdatasync")
expect_error(h1.flush, "flush with failing fdatasync")
put_state(faults, "fail-fdatasync", on=False)
expect_error(h2.flush, "flush after an earlier sync failure")
expect_error(h1.flush, "second flush after an earlier sync failure")
check("an earlier sync failed" in srv.output(), "sticky error logged")
print("sticky sync error: ok")
h1.shutdown()
h2.shutdown()
srv.stop()

# 3. The disk fills up in the middle of a write into a new chunk.  The
#    write fails with ENOSPC; after a trim of the chunk is acknowledged,
#    none of the half-written bytes may come back, before or after a
#    restart.
d = tmpdir()
srv = server(d)
h = srv.connect()
put_state(faults, "enospc-pwrite")
e = expect_error(lambda: h.pwrite(b"C" * (64 * KiB), 0), "write on a full disk")
check(e.errno == "ENOSPC", "ENOSPC reported (got %s)" % e.errno)
put_state(faults, "enospc-pwrite", on=False)
h.trim(64 * KiB, 0)
h.flush()
check(h.pread(64 * KiB, 0) == bytes(64 * KiB), "trimmed chunk reads zeros")
h.pwrite(b"D" * 4096, 60 * KiB)
check(h.pread(60 * KiB, 0) == bytes(60 * KiB),
      "bytes of the failed write came back after a trim")
h.flush()
h.shutdown()
srv.stop()
srv = server(d)
h = srv.connect()
check(h.pread(60 * KiB, 0) == bytes(60 * KiB), "after restart: still zeros")
check(h.pread(4096, 60 * KiB) == b"D" * 4096, "after restart: data kept")
print("ENOSPC then trim: ok")

# 4. A trim whose unlink fails leaves the data, and the next flush still
#    syncs it.
h.pwrite(b"E" * 4096, 5 * 64 * KiB)
put_state(faults, "fail-unlink")
expect_error(lambda: h.trim(64 * KiB, 5 * 64 * KiB), "trim with failing unlink")
put_state(faults, "fail-unlink", on=False)
check(h.pread(4096, 5 * 64 * KiB) == b"E" * 4096, "data still there")
put_state(faults, "log", on=False)
h.flush()
check(any(l[2] == "fdatasync" and l[3].endswith("a.5.chunk")
          for l in logged_calls(faults)),
      "flush synced the chunk whose unlink failed")
print("failed unlink: ok")
h.shutdown()
srv.stop()

# 5. A FIFO where a volume's metadata should be: refused, nothing hangs.
os.mkfifo(os.path.join(d, "x.meta"))
srv = server(d)
start = time.monotonic()
try:
    srv.connect("x")
    fail("a FIFO was served as a volume")
except nbd.Error:
    pass
check(time.monotonic() - start < 5, "refusing the FIFO took too long")
h = srv.connect("a")
check(h.pread(4096, 60 * KiB) == b"D" * 4096, "other volume still served")
lh = nbd.NBD()
lh.set_opt_mode(True)
lh.connect_unix(srv.sock)
names = []
lh.opt_list(lambda name, desc: names.append(name) or 0)
lh.opt_abort()
check(sorted(names) == ["a", "x"], "listing works: %r" % names)
h.shutdown()
srv.stop()
print("FIFO metadata: ok")
