"""sharded-file: running out of file descriptors (EMFILE, injected by
tests/fault-inject.c with LD_PRELOAD) fails the requests it hits, with
EIO, but does not poison the volume: once descriptors are available
again, flushes succeed and the data written before is all there.  Only
a failed fdatasync makes a volume's flushes fail for good."""

import os

import nbd

from shardkit_test import (Server, check, expect_error, fault_injector,
                           put_state, tmpdir)

shim, faults = fault_injector()

KiB = 1024
CHUNK = 64 * KiB


def server(d):
    return Server(["sharded-file", "dir=" + d, "export=a", "size=64M",
                   "chunk-size=64K", "max-open-files=1"],
                  env={"LD_PRELOAD": shim, "SHARDKIT_FAULT_DIR": faults})


d = tmpdir()
srv = server(d)
h = srv.connect()
# Chunk 0 is written, then its descriptor is closed (max-open-files=1)
# before any flush: the flush below must still cover it.
h.pwrite(b"A" * 4096, 0)
h.pwrite(b"B" * 4096, CHUNK)

# No descriptor can be opened for a chunk while the fault is on.
put_state(faults, "emfile-open")
e = expect_error(lambda: h.pread(4096, 0), "read with EMFILE")
check(e.errno == "EIO", "EIO for EMFILE (got %s)" % e.errno)
expect_error(lambda: h.pwrite(b"C" * 4096, 2 * CHUNK), "write with EMFILE")
# A flush now may fail (EIO) if it needs to open a file, or succeed.
try:
    h.flush()
except nbd.Error as e:
    check(e.errno == "EIO", "flush with EMFILE: EIO (got %s)" % e.errno)
put_state(faults, "emfile-open", on=False)

# Descriptors are back: everything works again, flushes included.
h.flush()
check(h.pread(4096, 0) == b"A" * 4096, "chunk 0 data")
h.pwrite(b"D" * 4096, 2 * CHUNK)
h.flush()

# EMFILE once only (N=1): the first open fails, the next one works, and
# the flush after it succeeds.
put_state(faults, "emfile-open", value=1)
expect_error(lambda: h.pread(4096, 0), "read with one EMFILE")
check(not os.path.exists(os.path.join(faults, "emfile-open")),
      "the injector's budget was not used up")
check(h.pread(4096, 0) == b"A" * 4096, "chunk 0 after a single EMFILE")
h.flush()
check("raise ulimit -n" in srv.output(), "EMFILE advice not logged")
check("an earlier sync failed" not in srv.output(),
      "the volume was poisoned by EMFILE:\n" + srv.output())
h.shutdown()
srv.stop()

srv = server(d)
h = srv.connect()
check(h.pread(4096, 0) == b"A" * 4096, "chunk 0 after restart")
check(h.pread(4096, CHUNK) == b"B" * 4096, "chunk 1 after restart")
check(h.pread(4096, 2 * CHUNK) == b"D" * 4096, "chunk 2 after restart")
h.shutdown()
srv.stop()
print("EMFILE is transient: ok")
