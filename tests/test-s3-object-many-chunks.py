"""s3-object with more than 1000 chunk objects (64K chunks), against
Ceph's gateway: S3 lists at most 1000 keys per ListObjectsV2 answer and
deletes at most 1000 per DeleteObjects, so both must page/batch.  After a
restart of nbdkit every chunk beyond the first 1000 keys is known (its
data reads back, extents say data), also when every listing answer's
continuation token is damaged (pages are asked for by the last key
taken, start-after, never by the token), reads of absent chunks make no
request (they work while the gateway is down), and one trim of the whole
volume removes every chunk object with a few DeleteObjects requests.  The
plugin reaches the gateway through a proxy that shows its requests."""

import struct
import time

import nbd

from s3_fault_proxy import FaultProxy, plugin_args_via
from s3_server import CephRGW, TcpProxy, chunk_keys, need_s3_object_plugin
from shardkit_test import Server, allocation, check

KiB = 1024
MiB = 1024 * KiB
CHUNK = 64 * KiB
NDATA = 1100                    # chunks with data
SIZE = 1200 * CHUNK             # 75 MiB, the last 100 chunks empty

need_s3_object_plugin()
s3 = CephRGW()
# Through a proxy that shows the requests.
proxy = TcpProxy(s3.port)
args = ["s3-object"] + [a if not a.startswith("endpoint=")
                        else "endpoint=" + proxy.endpoint
                        for a in s3.plugin_args(prefix="many/")] + [
    "export=many", "size=%d" % SIZE, "chunk-size=64K", "connections=8"]


def chunk_data(n):
    return struct.pack(">I", n + 1) * (CHUNK // 4)


t0 = time.monotonic()
srv = Server(args)
h = srv.connect()
# 4 MiB requests (64 chunks each), several in flight.
step = 64
cookies = []
for first in range(0, NDATA, step):
    count = min(step, NDATA - first)
    data = b"".join(chunk_data(n) for n in range(first, first + count))
    cookies.append(h.aio_pwrite(data, first * CHUNK))
    while h.aio_in_flight() >= 4:
        h.poll(-1)
while h.aio_in_flight() > 0:
    h.poll(-1)
for ck in cookies:
    h.aio_command_completed(ck)
h.flush()
t1 = time.monotonic()
print("wrote %d chunks in %.1f s" % (NDATA, t1 - t0), flush=True)
h.shutdown()
srv.stop()

keys = s3.keys("many/")                 # follows continuation tokens
check(chunk_keys(keys, "many") == list(range(NDATA)),
      "%d chunk objects in the bucket (got %d)"
      % (NDATA, len(chunk_keys(keys, "many"))))
check(sorted(k for k in keys if not k.endswith(".chunk")) ==
      ["many/many.lease", "many/many.meta"],
      "besides the chunks, the .meta and the writer's lease: %s"
      % [k for k in keys if not k.endswith(".chunk")])
check(len(keys) == NDATA + 2, "chunks, .meta and .lease: %d keys" % len(keys))

# A fresh nbdkit learns the chunk map from paginated listings.
proxy.reset_counters()
srv = Server(args)
h = srv.connect()
lists = [r for r in proxy.requests if "list-type=2" in r]
check(len(lists) >= 2 and any("start-after=" in r for r in lists),
      "the chunk map comes from paginated ListObjectsV2: %s" % lists)
t2 = time.monotonic()
for n in (0, 999, 1000, 1001, 1099):
    check(h.pread(CHUNK, n * CHUNK) == chunk_data(n), "chunk %d" % n)
tail = h.pread(100 * CHUNK, 1000 * CHUNK)
check(tail == b"".join(chunk_data(n) for n in range(1000, 1100)),
      "chunks 1000-1099 (beyond the first listing page)")

for pos, length, flags in allocation(h, SIZE):
    if pos < NDATA * CHUNK:
        check(flags & nbd.STATE_HOLE == 0,
              "extents: data at chunk %d" % (pos // CHUNK))
    else:
        check(flags & nbd.STATE_HOLE, "extents: hole at chunk %d"
              % (pos // CHUNK))
print("reopened and checked in %.1f s" % (time.monotonic() - t2), flush=True)

# Every listing answer's continuation token damaged (here: the base64 of
# a key past every chunk, which a gateway that follows it would list
# from, skipping chunks 1000-1099 that would then read as zeros).  A
# read-only server beside the first (it takes no lease) still knows
# every chunk.
fp = FaultProxy(s3.port)
bad = fp.add("list", query=r"list-type=2",
             bad_token="bWFueS9tYW55Ljk5OTkuY2h1bms=")
ro = Server(plugin_args_via(s3, fp, prefix="many/", extra=[
    "export=many", "size=%d" % SIZE, "chunk-size=64K"]), readonly=True)
hr = ro.connect()
check(bad.fired >= 2, "the token was damaged in %d answers" % bad.fired)
check(hr.pread(100 * CHUNK, 1000 * CHUNK) ==
      b"".join(chunk_data(n) for n in range(1000, 1100)),
      "damaged continuation tokens: chunks 1000-1099 read back wrong")
hr.shutdown()
ro.stop()
fp.close()

# The listing taken at open answers reads of absent chunks: with the
# gateway down they still read as zeros (no request is made).
s3.stop_gateway()
check(h.pread(50 * CHUNK, NDATA * CHUNK) == bytes(50 * CHUNK),
      "absent chunks read as zeros without asking the server")
s3.start_gateway()

# One trim of everything: DeleteObjects in batches of at most 1000 keys.
t3 = time.monotonic()
proxy.reset_counters()
h.trim(SIZE, 0)
h.flush()
deletes = [r for r in proxy.requests if r.startswith("POST ") and "delete" in r]
singles = [r for r in proxy.requests if r.startswith("DELETE ")]
print("trim: %d DeleteObjects requests, %d single DELETEs"
      % (len(deletes), len(singles)), flush=True)
check(2 <= len(deletes) <= 4 and len(singles) <= 2,
      "1100 chunks removed in batches of at most 1000 keys: %d DeleteObjects, "
      "%d DELETE" % (len(deletes), len(singles)))
print("trimmed %d chunks in %.1f s" % (NDATA, time.monotonic() - t3),
      flush=True)
keys = s3.keys("many/")
check(chunk_keys(keys, "many") == [], "all chunk objects removed, %d left"
      % len(chunk_keys(keys, "many")))
check(sorted(keys) == ["many/many.lease", "many/many.meta"],
      "the .meta and the writer's lease stay: %s" % keys)
check(h.pread(CHUNK, 1050 * CHUNK) == bytes(CHUNK), "trimmed reads zero")
h.shutdown()
srv.stop()
print("ok")
