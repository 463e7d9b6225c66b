"""sharded-file never closes a chunk file with unsynced writes before it
has fdatasync'd it (tests/fault-inject.c loaded with LD_PRELOAD): with
max-open-files=1 every new chunk evicts the previous one's descriptor.
Once the last descriptor of a file is closed, the kernel may drop a
write-back error with the inode, and a flush that reopens the file
later sees a clean file: so an eviction fdatasyncs first, and a failure
there fails the next flush and every later one (the error is sticky).
The same holds at shutdown, where the failure is logged."""

from shardkit_test import (Server, check, expect_error, fault_injector,
                           logged_calls, put_state, tmpdir)

shim, faults = fault_injector()

KiB = 1024
CHUNK = 64 * KiB


def synced(chunk):
    return any(l[2] == "fdatasync" and l[3].endswith("/" + chunk)
               for l in logged_calls(faults))


def server(d):
    return Server(["sharded-file", "dir=" + d, "export=a", "size=64M",
                   "chunk-size=64K", "max-open-files=1"],
                  env={"LD_PRELOAD": shim, "SHARDKIT_FAULT_DIR": faults})


# 1. A healthy disk: the evicted dirty descriptor is synced before it is
#    closed, and the data is there after a restart.
d = tmpdir()
srv = server(d)
h = srv.connect()
h.pwrite(b"A" * 4096, 0)
put_state(faults, "log", on=False)
h.pwrite(b"B" * 4096, CHUNK)          # evicts chunk 0
check(synced("a.0.chunk"), "evicted dirty chunk 0 was not fdatasync'd "
      "before its descriptor was closed")
check(not synced("a.1.chunk"), "chunk 1 synced too early")
h.pwrite(b"C" * 4096, 2 * CHUNK)      # evicts chunk 1
check(synced("a.1.chunk"), "evicted dirty chunk 1 not fdatasync'd")
h.flush()
put_state(faults, "log", on=False)
h.pread(4096, 0)                      # evicts chunk 2, clean since the flush
h.pread(4096, CHUNK)                  # evicts chunk 0, only read
calls = logged_calls(faults)
check(not calls, "clean descriptors were fdatasync'd: %r" % calls)
h.shutdown()
srv.stop()
srv = server(d)
h = srv.connect()
check(h.pread(4096, 0) == b"A" * 4096, "chunk 0 data after restart")
check(h.pread(4096, CHUNK) == b"B" * 4096, "chunk 1 data after restart")
check(h.pread(4096, 2 * CHUNK) == b"C" * 4096, "chunk 2 data after restart")
h.shutdown()
srv.stop()
print("eviction syncs dirty descriptors: ok")

# 2. The fdatasync at eviction fails (and only it: the disk is fine again
#    by the flush, as after a transient write-back error).  The flush
#    must fail, and so must every later one.
d = tmpdir()
srv = server(d)
h = srv.connect()
h.pwrite(b"C" * 4096, 0)
put_state(faults, "fail-fdatasync", value="a.0.chunk")
h.pwrite(b"D" * 4096, CHUNK)          # evicts chunk 0: its sync fails
put_state(faults, "fail-fdatasync", on=False)
e = expect_error(h.flush, "flush after a failed fdatasync at eviction")
check(e.errno == "EIO", "EIO reported (got %s)" % e.errno)
expect_error(h.flush, "second flush after a failed fdatasync at eviction")
h2 = srv.connect()
expect_error(h2.flush, "flush on another connection")
out = srv.output()
check("before closing its descriptor" in out,
      "the failed fdatasync at eviction was not logged:\n" + out)
check("an earlier sync failed" in out, "sticky error not logged")
h.shutdown()
h2.shutdown()
srv.stop()
print("failed fdatasync at eviction fails the next flushes: ok")

# 3. Shutdown without a flush: dirty descriptors are synced before they
#    are closed, and a failure is logged rather than silently dropped.
d = tmpdir()
srv = server(d)
h = srv.connect()
h.pwrite(b"E" * 4096, 3 * CHUNK)
put_state(faults, "log", on=False)
h.shutdown()
srv.stop()
check(synced("a.3.chunk"), "dirty chunk not fdatasync'd at shutdown")
srv = server(d)
h = srv.connect()
check(h.pread(4096, 3 * CHUNK) == b"E" * 4096, "data after restart")
h.pwrite(b"F" * 4096, 4 * CHUNK)
put_state(faults, "fail-fdatasync", value="a.4.chunk")
h.shutdown()
srv.stop()
put_state(faults, "fail-fdatasync", on=False)
check("at shutdown" in srv.output(),
      "failed fdatasync at shutdown not logged:\n" + srv.output())
print("shutdown syncs dirty descriptors: ok")
