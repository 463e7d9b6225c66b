"""Bytes flipped in flight in S3 answers (issue 16), by a seeded proxy:
  - one byte flipped in 20% of .meta GET and listing bodies: 50 starts and
    opens in a row all succeed and serve the right data;
  - every listing body flipped: the open fails rather than serving zeros;
  - 10% of chunk GET bodies flipped, s3-object alone (no retry filter):
    never wrong data to the client, and fewer than 5% of reads fail;
  - a .meta edited at rest (a digit of its size changed, its checksum
    line kept) is refused at start-up; one without the checksum line
    (the format before it) still opens and serves."""

import os
import random

import nbd

from s3_fault_proxy import FaultProxy, plugin_args_via
from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check, seed_from_env, start_fails

KiB = 1024
CH = 64 * KiB
SIZE = 8 * CH
P = "fl/"

seed = seed_from_env()
need_s3_object_plugin()
s3 = CephRGW()
proxy = FaultProxy(s3.port, bucket=s3.bucket, seed=seed)
args = plugin_args_via(s3, proxy, P, ["export=vol"])
srv = Server(args + ["size=%d" % SIZE, "chunk-size=64K"])
h = srv.connect()
data = os.urandom(SIZE)
h.pwrite(data, 0)
h.flush()
h.shutdown()
srv.stop()

# 1. 20% of metadata and listing bodies flipped.
rm = proxy.add("flip", method="GET", key=r"\.meta$", probability=0.2)
rl = proxy.add("flip", method="GET", query=r"list-type=2", probability=0.2)
bad = []
for i in range(50):
    try:
        s = Server(args)
        hh = s.connect()
        ok = all(hh.pread(CH, c * CH) == data[c * CH:(c + 1) * CH]
                 for c in (0, 3, 7))
        hh.shutdown()
        s.stop()
        if not ok:
            bad.append("%d: WRONG DATA" % i)
    except (RuntimeError, nbd.Error) as e:
        bad.append("%d: %s" % (i, str(e).splitlines()[0][:200]))
print("50 starts with 20%% of .meta/listing bodies flipped (%d + %d flips):"
      " %d failed %s" % (rm.fired, rl.fired, len(bad), bad[:5]), flush=True)
check(not any("WRONG" in b for b in bad), "wrong data served: %s" % bad)
check(not bad, "%d of 50 starts/opens failed: %s" % (len(bad), bad[:5]))
proxy.clear()

# 2. Every listing body flipped: the open fails, nothing is served.
proxy.add("flip", method="GET", query=r"list-type=2")
s = Server(args)
try:
    hh = s.connect()
    got = hh.pread(SIZE, 0)
    check(False, "every listing flipped: the volume opened and served %s"
          % ("the right data" if got == data else "WRONG data"))
except nbd.Error as e:
    print("every listing flipped: open failed (%s)" % e, flush=True)
s.stop()
proxy.clear()

# 3. 10% of chunk GET bodies flipped.
rc = proxy.add("flip", method="GET", key=r"\.chunk$", probability=0.1)
s = Server(args)
hh = s.connect()
rng = random.Random(seed)
N = 300
failed = 0
for i in range(N):
    off = rng.randrange(0, SIZE - 1)
    n = min(rng.choice((4 * KiB, 16 * KiB, CH, 2 * CH)), SIZE - off)
    try:
        got = hh.pread(n, off)
    except nbd.Error as e:
        check(e.errno == "EIO", "read failed with %s" % e)
        failed += 1
        continue
    check(got == data[off:off + n], "read %d (%d bytes at %d): WRONG DATA "
          "after a flipped chunk GET" % (i, n, off))
print("%d reads, %d chunk GETs flipped, %d reads failed" % (N, rc.fired,
                                                          failed), flush=True)
check(failed < N * 0.05, "%d of %d reads failed (>= 5%%)" % (failed, N))
hh.shutdown()
s.stop()
proxy.clear()

# 4. The .meta's own checksum, at rest: an edit is refused, the older
#    format without the line is served.
meta = s3.get(P + "vol.meta")
lines = meta.decode().splitlines(keepends=True)
check(lines[-1].startswith("checksum=crc32c:"), "the .meta ends with its "
      "checksum line: %r" % lines[-1])
size_line = [i for i, l in enumerate(lines) if l.startswith("size=")][0]
edited = list(lines)
edited[size_line] = "size=%d\n" % (2 * SIZE)   # still a valid size
s3.put(P + "vol.meta", "".join(edited).encode())
out = start_fails(args)
check("checksum" in out and "vol.meta" in out, "an edited .meta is refused "
      "naming it and its checksum:\n" + out[-2000:])
s3.put(P + "vol.meta", "".join(lines[:-1]).encode())
s = Server(args)
hh = s.connect()
check(hh.get_size() == SIZE and hh.pread(SIZE, 0) == data,
      "a .meta without the checksum line still opens and serves")
hh.shutdown()
s.stop()
print("PASS")
