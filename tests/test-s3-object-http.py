"""s3-object's HTTP behaviour, seen and disturbed by a TCP proxy between
the plugin and Ceph's gateway:
  - every chunk PUT carries its real, signed SHA-256 (which the server
    checks against the body) and no Content-MD5 (issue 13: MD5 would
    only cost CPU); no x-amz-meta-shardkit-sha256 either;
  - kept-alive connections: hundreds of requests over at most
    connections= TCP connections;
  - a small read of a big chunk is a ranged GET (a 4 KiB read of a 4 MiB
    chunk moves well under a chunk);
  - a byte flipped in flight in a GET body is detected (EIO or a retry,
    never wrong data); a byte flipped in a PUT body is refused by the
    server (payload SHA-256), and nothing corrupt is stored;
  - connections reset in the middle of large requests: they succeed on a
    retry or fail cleanly, and the data is right;
  - a server that stops answering: with timeout=2 http-retries=0 the request
    fails in bounded time, and the volume works once the server answers
    again."""

import hashlib
import os
import time

import nbd

from s3_server import CephRGW, TcpProxy, chunk_keys, need_s3_object_plugin
from shardkit_test import Server, check, fail

KiB = 1024
MiB = 1024 * KiB
CHUNK = 4 * MiB
SIZE = 32 * MiB

need_s3_object_plugin()
s3 = CephRGW()
proxy = TcpProxy(s3.port)


def args(*extra):
    a = ["s3-object"] + s3.plugin_args(prefix="http/") + [
        "export=vol", "size=%d" % SIZE]
    a = [x if not x.startswith("endpoint=") else "endpoint=" + proxy.endpoint
         for x in a]
    return a + list(extra)


data = os.urandom(4 * CHUNK)

# 1. Keep-alive: a few hundred requests over at most connections= sockets.
srv = Server(args("connections=4"))
h = srv.connect()
proxy.reset_counters()
h.pwrite(data, 0)                       # 4 chunk PUTs, in parallel
# Each PUT carries the digest of its body for the server to verify: the
# real SHA-256 as x-amz-content-sha256 (signed).  No Content-MD5.
puts = [(line, f) for line, f in proxy.headers if line.startswith("PUT ")]
check(len(puts) == 4, "4 PUTs: %s" % [p[0] for p in puts])
for line, f in puts:
    n = int(line.split(".chunk")[0].rsplit(".", 1)[1])
    body = data[n * CHUNK:(n + 1) * CHUNK]
    check(f.get("x-amz-content-sha256") == hashlib.sha256(body).hexdigest(),
          "%s: x-amz-content-sha256 %s is not the body's SHA-256"
          % (line, f.get("x-amz-content-sha256")))
    check("content-md5" not in f, "%s: no Content-MD5 on a signed chunk PUT"
          % line)
    check("x-amz-meta-shardkit-sha256" not in f,
          "%s: no x-amz-meta-shardkit-sha256" % line)
    check(f.get("x-amz-meta-shardkit-crc32c", "").startswith("v1,"),
          "%s: the sub-block CRC32Cs are in the metadata" % line)
    check("x-amz-content-sha256" in f.get("authorization", ""),
          "%s: the payload hash is signed" % line)
    check(f.get("authorization", "").startswith("AWS4-HMAC-SHA256 "),
          "%s: SigV4" % line)
for i in range(200):
    off = (i * 7919 * 4096) % (4 * CHUNK - 4096)
    check(h.pread(4096, off) == data[off:off + 4096], "read %d" % i)
for i in range(50):                      # small writes: GET + PUT each
    h.pwrite(b"%05d" % i, 5 * CHUNK + i * 1000)
    data_w = b"%05d" % i
check(h.pread(5, 5 * CHUNK + 49 * 1000) == data_w, "small writes")
nreq = len(proxy.requests)
print("keep-alive: %d requests over %d connections, %d MiB up, %d MiB down"
      % (nreq, proxy.connections, proxy.bytes_up // MiB,
         proxy.bytes_down // MiB), flush=True)
check(nreq >= 250, "requests counted: %d" % nreq)
check(proxy.connections <= 4, "%d TCP connections for %d requests with "
      "connections=4: not kept alive" % (proxy.connections, nreq))
h.shutdown()
srv.stop()

# 2. A small read of a chunk that is not cached anywhere is a ranged GET.
srv = Server(args())
h = srv.connect()
proxy.reset_counters()
check(h.pread(4096, CHUNK + MiB + 100) == data[CHUNK + MiB + 100:
                                              CHUNK + MiB + 4196],
      "small read")
print("a 4 KiB read of a 4 MiB chunk moved %d bytes (%s)"
      % (proxy.bytes_down, proxy.requests), flush=True)
check(proxy.bytes_down < 512 * KiB, "a 4 KiB read fetched %d bytes: not a "
      "ranged GET" % proxy.bytes_down)

# 3. A byte flipped in a GET body on the wire.
for length, off, what in ((4096, 2 * CHUNK + 12345, "small read"),
                          (CHUNK, 3 * CHUNK, "whole-chunk read")):
    proxy.corrupt_next("down", 1000)
    try:
        got = h.pread(length, off)
        check(got == data[off:off + length],
              "%s: WRONG DATA after a byte flipped in flight" % what)
        result = "served correct data (retried)"
    except nbd.Error as e:
        check(e.errno == "EIO", "%s: %s" % (what, e))
        result = "EIO"
    check(proxy.corrupted["down"] >= 1, "%s: the proxy flipped a byte" % what)
    proxy.corrupted["down"] = 0
    print("GET body corrupted in flight, %s: %s" % (what, result), flush=True)
    check(h.pread(length, off) == data[off:off + length],
          "%s: fine again" % what)

# 4. A byte flipped in a PUT body on the wire: the server must refuse it
#    (x-amz-content-sha256), nothing corrupt is stored.
new = os.urandom(CHUNK)
proxy.corrupt_next("up", 5000)
try:
    h.pwrite(new, 6 * CHUNK)
    wrote = True
except nbd.Error as e:
    wrote = False
    check(e.errno == "EIO" or e.errno, "PUT refused: %s" % e)
check(proxy.corrupted["up"] == 1, "the proxy flipped a byte in a PUT body")
print("PUT body corrupted in flight: write %s" % ("succeeded (retried)" if
                                                  wrote else "failed"),
      flush=True)
got = h.pread(CHUNK, 6 * CHUNK)
check(got == new if wrote else got in (new, bytes(CHUNK)),
      "after a corrupted PUT: %s" % ("wrong data" if got not in
                                     (new, bytes(CHUNK)) else "mismatch"))
if 6 in chunk_keys(s3.keys("http/"), "vol"):
    k = [k for k in s3.keys("http/") if k.endswith("vol.6.chunk")][0]
    check(s3.get(k) == new, "the stored object is not the corrupted body")

# 5. Connections reset under large requests.
big = os.urandom(4 * CHUNK)
ck = h.aio_pwrite(big, 0)
time.sleep(0.05)
nreset = proxy.reset_all()
while h.aio_in_flight() > 0:
    h.poll(-1)
try:
    h.aio_command_completed(ck)
    data = big
    print("write under connection resets: succeeded", flush=True)
except nbd.Error as e:
    print("write under connection resets: failed (%s)" % e, flush=True)
    got = h.pread(4 * CHUNK, 0)
    for n in range(4):
        piece = got[n * CHUNK:(n + 1) * CHUNK]
        check(piece in (data[n * CHUNK:(n + 1) * CHUNK],
                        big[n * CHUNK:(n + 1) * CHUNK]),
              "chunk %d after a failed write is neither old nor new" % n)
    h.pwrite(big, 0)
    data = big
buf = nbd.Buffer(4 * CHUNK)
ck = h.aio_pread(buf, 0)
time.sleep(0.02)
nreset += proxy.reset_all()
while h.aio_in_flight() > 0:
    h.poll(-1)
try:
    h.aio_command_completed(ck)
    check(buf.to_bytearray() == data, "read under resets: WRONG DATA")
    print("read under connection resets: succeeded", flush=True)
except nbd.Error as e:
    print("read under connection resets: failed (%s)" % e, flush=True)
check(h.pread(4 * CHUNK, 0) == data, "data after the resets")
retried = srv.output().count(", retrying (attempt")
print("%d connections reset under a 16 MiB write and read; %d requests "
      "retried by the plugin" % (nreset, retried), flush=True)
check(nreset > 0, "the resets hit open connections")
h.shutdown()
srv.stop()

# 6. A server that stops answering (the proxy holds back its bytes).
srv = Server(args("timeout=2", "http-retries=0"))
h = srv.connect()
proxy.stall(True)
t0 = time.monotonic()
try:
    h.pread(4096, 2 * CHUNK)
    fail("a read succeeded while the server did not answer")
except nbd.Error as e:
    took = time.monotonic() - t0
    print("read from a silent server failed after %.1f s: %s" % (took, e),
          flush=True)
    check(took < 15, "timeout=2 http-retries=0 took %.1f s" % took)
    # nbdkit would send ETIMEDOUT to the client as EINVAL ("bad request").
    check(e.errno == "EIO", "a timeout reaches the client as EIO: %s" % e)
proxy.stall(False)
time.sleep(0.2)
check(h.pread(4096, 2 * CHUNK) == data[2 * CHUNK:2 * CHUNK + 4096],
      "works once the server answers again")
h.pwrite(b"after", 2 * CHUNK)
check(h.pread(5, 2 * CHUNK) == b"after", "writes work again")
h.shutdown()
srv.stop()
print("ok")
