"""s3-object against Ceph's RADOS Gateway: every NBD command on a fresh
volume, what lands in the bucket (the metadata object, one object per
non-zero chunk, none for zeros: counted by listing the bucket), extents,
persistence across a restart of nbdkit, and every volume under the
prefix listed as an export."""

import json
import subprocess

import nbd

from s3_server import CephRGW, chunk_keys, free_port, need_s3_object_plugin
from shardkit_test import Server, check, fail, need_tool, start_fails

MiB = 1024 * 1024
need_s3_object_plugin()
nbdinfo = need_tool("nbdinfo", "libnbd-bin")
s3 = CephRGW()
PREFIX = "vols/"
args = ["s3-object"] + s3.plugin_args(prefix=PREFIX) + ["export=vol",
                                                       "size=64M"]
srv = Server(args)
h = srv.connect()

check(h.get_size() == 64 * MiB, "size")
for cap in ("can_flush", "can_fua", "can_trim", "can_zero", "can_fast_zero",
            "can_multi_conn", "can_cache"):
    check(getattr(h, cap)(), cap)
check(h.can_meta_context("base:allocation"), "base:allocation")
check(not h.is_read_only(), "read-write")


def chunks():
    return chunk_keys(s3.keys(), "vol")


# The metadata object, in the volume format of sharded-file.
metas = [k for k in s3.keys() if k.endswith("vol.meta")]
check(len(metas) == 1 and metas[0].startswith(PREFIX.rstrip("/")),
      "one metadata object under the prefix: %s" % s3.keys())
meta = dict(line.split("=", 1) for line in
            s3.get(metas[0]).decode().splitlines()
            if "=" in line and not line.startswith("#"))
check(meta["format"] == "shardkit-volume", "meta format: %s" % meta)
check(meta["size"] == str(64 * MiB), "meta size")
check(meta["chunk-size"] == str(4 * MiB), "meta chunk-size (default 4M)")
chunk_prefix = metas[0][:-len("vol.meta")]

# A fresh volume: no chunk objects, all zeros.
check(chunks() == [], "fresh volume has no chunk objects")
check(h.pread(4096, 10 * MiB) == bytes(4096), "fresh reads zero")

# A write across the border of chunks 0 and 1: two objects, named as in
# a sharded-file directory.
data = bytes(range(256)) * 32
h.pwrite(data, 4 * MiB - 4096)
check(h.pread(8192, 4 * MiB - 4096) == data, "read back across chunks")
check(chunks() == [0, 1], "two chunk objects: %s" % s3.keys())
check(s3.exists(chunk_prefix + "vol.0.chunk"), "object name PREFIX/vol.0.chunk")
# Bytes of the object are the bytes of the chunk (same format as files).
obj0 = s3.get(chunk_prefix + "vol.0.chunk")
check(len(obj0) <= 4 * MiB, "chunk object not longer than a chunk")
check(obj0[4 * MiB - 4096:4 * MiB] == data[:4096] and
      obj0[:4 * MiB - 4096] == bytes(len(obj0[:4 * MiB - 4096])),
      "chunk object holds the chunk's bytes")

# FUA write and flush.
h.pwrite(b"fua" * 100, 20 * MiB, nbd.CMD_FLAG_FUA)
check(s3.get(chunk_prefix + "vol.5.chunk", 0, 300) == b"fua" * 100,
      "FUA write is in the bucket when acknowledged")
h.flush()
check(h.pread(300, 20 * MiB) == b"fua" * 100, "fua data")

# Zeros into an absent chunk store nothing; a whole chunk of zeros
# removes the object.
h.pwrite(bytes(65536), 40 * MiB)
check(10 not in chunks(), "zeros into an absent chunk stored nothing")
h.pwrite(bytes(4 * MiB), 20 * MiB)
check(5 not in chunks(), "whole chunk of zeros removed the object")
check(h.pread(300, 20 * MiB) == bytes(300), "zeros read back")

# A partial write of zeros that leaves a chunk all zero removes it too.
h.pwrite(b"x" * 1000, 28 * MiB + 5000)
check(7 in chunks(), "chunk 7 stored")
h.pwrite(bytes(1000), 28 * MiB + 5000)
check(7 not in chunks(), "partial zero write leaving chunk 7 all zero "
      "removed its object: %s" % chunks())

# Trim of part of chunk 1 keeps chunk 0; the trimmed range was all of
# chunk 1's data, so its object goes.
h.trim(4096, 4 * MiB)
check(h.pread(4096, 4 * MiB) == bytes(4096), "trimmed part reads zero")
check(1 not in chunks(), "chunk 1 all zero after trim: object removed")
check(h.pread(4096, 4 * MiB - 4096) == data[:4096], "chunk 0 untouched")

# Zero, with NO_HOLE and FAST_ZERO, partial and whole chunks.
h.pwrite(b"\xff" * (3 * MiB), 8 * MiB)
h.zero(MiB, 8 * MiB + 1000, nbd.CMD_FLAG_NO_HOLE)
check(h.pread(MiB, 8 * MiB + 1000) == bytes(MiB), "zeroed")
check(h.pread(1000, 8 * MiB) == b"\xff" * 1000, "before the zero untouched")
check(h.pread(1000, 9 * MiB + 1000) == b"\xff" * 1000, "after it untouched")
check(2 in chunks(), "partly zeroed chunk 2 kept")
try:
    h.zero(MiB, 9 * MiB, nbd.CMD_FLAG_FAST_ZERO)
except nbd.Error as e:
    check(e.errno == "ENOTSUP", "fast zero may only fail with ENOTSUP: %s" % e)
h.zero(8 * MiB, 8 * MiB)
check(2 not in chunks() and 3 not in chunks(), "zeroed whole chunks removed")
check(h.pread(4096, 8 * MiB + 4096) == bytes(4096), "zeroed chunks read zero")

# Trim of many whole chunks (one request).
for n in range(10, 16):
    h.pwrite(b"%d" % n * 1000, n * 4 * MiB + 77)
check([n for n in chunks() if n >= 10] == list(range(10, 16)), "6 chunks")
h.trim(24 * MiB, 40 * MiB)
check(chunks() == [0], "trim of 6 whole chunks removed their objects: %s"
      % chunks())


# Extents: data only in chunk 0.
def extents(handle, length=64 * MiB, offset=0):
    out = []

    def cb(meta, off, ents, err):
        if meta == "base:allocation":
            out.extend(zip(ents[0::2], ents[1::2]))
    handle.block_status(length, offset, cb)
    return out


def flags_at(ext, offset, base=0):
    pos = base
    for length, flags in ext:
        if pos <= offset < pos + length:
            return flags
        pos += length


ext = extents(h)
check(sum(n for n, _ in ext) <= 64 * MiB and ext, "extents returned")
check(flags_at(ext, 4 * MiB - 1) & nbd.STATE_HOLE == 0, "data in chunk 0")
ext = extents(h, 60 * MiB, 4 * MiB)
check(all(f & nbd.STATE_HOLE for _, f in ext), "holes beyond chunk 0: %s"
      % ext)

# Cache (prefetch) succeeds.
h.cache(8 * MiB, 0)

# Out-of-range requests fail cleanly, the connection keeps working.
for fn, a in ((h.pread, (2, 64 * MiB - 1)), (h.pwrite, (b"ab", 64 * MiB - 1)),
              (h.trim, (2, 64 * MiB - 1)), (h.zero, (2, 64 * MiB - 1))):
    try:
        fn(*a)
        fail("%s past the end succeeded" % fn.__name__)
    except nbd.Error:
        pass
check(h.pread(4096, 4 * MiB - 4096) == data[:4096], "still serving")

# Several connections see one state (multi-conn).
h2 = srv.connect()
h2.pwrite(b"second", 33 * MiB + 3)
check(h.pread(6, 33 * MiB + 3) == b"second", "one state for all connections")
h2.shutdown()
h.flush()
h.shutdown()
srv.stop()

# A restart of nbdkit: the data is in the bucket, and extents come from
# the listing of the chunk objects.
srv = Server(args)
h = srv.connect()
check(h.pread(4096, 4 * MiB - 4096) == data[:4096], "data after restart")
check(h.pread(6, 33 * MiB + 3) == b"second", "data after restart (2)")
ext = extents(h)
check(flags_at(ext, 4 * MiB - 1) & nbd.STATE_HOLE == 0,
      "chunk 0 is data after restart")
check(flags_at(ext, 20 * MiB) & nbd.STATE_HOLE, "chunk 5 a hole after restart")
h.shutdown()
srv.stop()

# The size of an existing volume is fixed.
out = start_fails(["s3-object"] + s3.plugin_args(prefix=PREFIX) +
                  ["export=vol", "size=32M"])
check("size" in out, "size mismatch refused: %s" % out)

# A server that does not answer at start-up: a clear error once the
# retries are spent (they sleep before nbdkit serves: nbdkit_nanosleep
# aborted on an assertion there), never a crash.
dead = ["endpoint=http://127.0.0.1:%d" % free_port() if a.startswith("endpoint=")
        else a for a in s3.plugin_args(prefix=PREFIX)]
out = start_fails(["s3-object"] + dead + ["http-retries=2", "timeout=2",
                                          "export=vol"])
check("Couldn't connect" in out and "Assertion" not in out,
      "unreachable endpoint at start-up: %s" % out)

# Every volume under the prefix is an export; other prefixes are apart.
Server(["s3-object"] + s3.plugin_args(prefix=PREFIX) +
       ["export=small", "size=3M", "chunk-size=64K"]).stop()
Server(["s3-object"] + s3.plugin_args(prefix="elsewhere/") +
       ["export=other", "size=1M"]).stop()
srv = Server(["s3-object"] + s3.plugin_args(prefix=PREFIX))
out = subprocess.run([nbdinfo, "--list", "--json", srv.uri()],
                     capture_output=True, text=True)
check(out.returncode == 0, "nbdinfo --list: %s" % out.stderr)
names = sorted(e["export-name"] for e in json.loads(out.stdout)["exports"])
check(names == ["small", "vol"], "exports under the prefix: %s" % names)
hs = srv.connect("small")
check(hs.get_size() == 3 * MiB, "small's size")
hs.pwrite(b"s" * 70000, 60000)
check(chunk_keys(s3.keys(), "small") == [0, 1], "64K chunks of small: %s"
      % s3.keys())
hv = srv.connect("vol")
check(hv.pread(6, 33 * MiB + 3) == b"second", "vol by name")
for bad in ("../vol", ".hidden", "a/b", "x" * 201, "no such"):
    try:
        srv.connect(bad)
        fail("export name %r accepted" % bad)
    except nbd.Error:
        pass
try:
    srv.connect("missing")
    fail("a missing volume was served")
except nbd.Error:
    pass
check(hv.pread(6, 33 * MiB + 3) == b"second", "server alive after bad names")
check(not any(k for k in s3.keys() if "missing" in k or "hidden" in k),
      "bad or missing names created nothing: %s" % s3.keys())
hs.shutdown()
hv.shutdown()
srv.stop()
print("ok")
