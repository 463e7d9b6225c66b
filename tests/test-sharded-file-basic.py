"""sharded-file: every NBD command against a fresh volume, and what lands
in the directory (sparse chunks, metadata)."""

import os

import nbd

from shardkit_test import Server, check, tmpdir

MiB = 1024 * 1024
d = tmpdir()
srv = Server(["sharded-file", "dir=" + d, "export=vol", "size=64M"])
h = srv.connect()

check(h.get_size() == 64 * MiB, "size")
for cap in ("can_flush", "can_fua", "can_trim", "can_zero", "can_fast_zero",
            "can_multi_conn", "can_cache", "can_meta_context"):
    if cap == "can_meta_context":
        check(h.can_meta_context("base:allocation"), cap)
    else:
        check(getattr(h, cap)(), cap)
check(not h.is_read_only(), "read-write")
check(h.get_block_size(nbd.SIZE_PREFERRED) == 4096, "preferred block size")


def chunks():
    return sorted(f for f in os.listdir(d) if f.endswith(".chunk"))


# A fresh volume: only metadata, all zeros, all holes.
check(chunks() == [], "fresh volume has no chunks")
check(h.pread(4096, 10 * MiB) == bytes(4096), "fresh reads zero")

# A write crossing the border of chunks 0 and 1.
data = os.urandom(8192)
h.pwrite(data, 4 * MiB - 4096)
check(h.pread(8192, 4 * MiB - 4096) == data, "read back across chunks")
check(chunks() == ["vol.0.chunk", "vol.1.chunk"], "two chunk files")

# FUA write and flush.
h.pwrite(b"fua" * 100, 20 * MiB, nbd.CMD_FLAG_FUA)
h.flush()
check(h.pread(300, 20 * MiB) == b"fua" * 100, "fua data")

# Writing zeros into an absent chunk creates nothing; a whole chunk of
# zeros removes an existing one.
h.pwrite(bytes(65536), 40 * MiB)
check("vol.10.chunk" not in chunks(), "zeros into absent chunk stored nothing")
h.pwrite(bytes(4 * MiB), 20 * MiB)
check("vol.5.chunk" not in chunks(), "whole chunk of zeros removed the file")
check(h.pread(300, 20 * MiB) == bytes(300), "zeros read back")

# Trim of a part of chunk 1 keeps the rest; trimming the rest removes it.
h.trim(4096, 4 * MiB)
check(h.pread(4096, 4 * MiB) == bytes(4096), "trimmed part reads zero")
check("vol.1.chunk" not in chunks(), "chunk 1 was only data in its first "
      "4096 bytes: trimming them removes it")
check(h.pread(4096, 4 * MiB - 4096) == data[:4096], "chunk 0 untouched")

# Zero, with and without may_trim, and fast zero.
h.pwrite(b"\xff" * (3 * MiB), 8 * MiB)
h.zero(MiB, 8 * MiB + 1000, nbd.CMD_FLAG_NO_HOLE)
check(h.pread(MiB, 8 * MiB + 1000) == bytes(MiB), "zeroed")
check(h.pread(1000, 8 * MiB) == b"\xff" * 1000, "before zero untouched")
h.zero(MiB, 9 * MiB, nbd.CMD_FLAG_FAST_ZERO)
h.zero(8 * MiB, 8 * MiB)
check("vol.2.chunk" not in chunks(), "zeroed whole chunk removed")

# Extents: data in chunk 0, holes elsewhere.
extents = []


def cb(meta, off, ents, err):
    if meta == "base:allocation":
        extents.extend(zip(ents[0::2], ents[1::2]))


h.block_status(64 * MiB, 0, cb)
check(sum(length for length, _ in extents) == 64 * MiB, "extents cover all")
pos = 0
for length, flags in extents:
    if pos >= 4 * MiB:
        check(flags & nbd.STATE_HOLE, "hole beyond chunk 0 at %d" % pos)
    pos += length


def flags_at(offset):
    pos = 0
    for length, flags in extents:
        if pos <= offset < pos + length:
            return flags
        pos += length


check(flags_at(4 * MiB - 4096) & nbd.STATE_HOLE == 0, "data in chunk 0")
check(flags_at(4 * MiB - 1) & nbd.STATE_HOLE == 0, "data at end of chunk 0")
check(flags_at(0) & nbd.STATE_HOLE, "hole at the start of chunk 0")

# Cache (prefetch) succeeds.
h.cache(8 * MiB, 0)

# Out-of-range requests fail cleanly.
try:
    h.pread(2, 64 * MiB - 1)
    check(False, "read past the end succeeded")
except nbd.Error:
    pass

h.shutdown()

# Metadata on disk.
with open(os.path.join(d, "vol.meta")) as f:
    meta = dict(l.strip().split("=", 1) for l in f
                if "=" in l and not l.startswith("#"))
check(meta["size"] == str(64 * MiB), "meta size")
check(meta["chunk-size"] == str(4 * MiB), "meta chunk-size")
check(meta["format"] == "shardkit-volume", "meta format")
srv.stop()
print("ok")
