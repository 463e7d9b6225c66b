"""Snapshots on a directory: `shardkit snapshot` freezes a volume's data
as a read-only volume and the volume goes on under its name.  After a
snapshot, writes, trims and zeros to the volume show in the volume and
never in the snapshot; both are served at once (the snapshot read-only,
also by a second server, and by a clone's server); chunk files of the
new generation are VOL@1.<n>.chunk and no chunk was copied.  A chain of
three snapshots reads each moment back.  A volume never snapshotted
keeps version 1 metadata and today's chunk names."""

import os

from shardkit_test import Server, allocation, check, tmpdir, expect_error
from tool_test import MiB, ok

KiB = 1024
d = tmpdir()
ok("create", d, "vm", "8M", "--chunk-size=1M")
ok("create", d, "plain", "4M", "--chunk-size=1M")


def serve(name, readonly=False):
    srv = Server(["sharded-file", "dir=" + d, "export=" + name],
                 readonly=readonly)
    return srv, srv.connect()


def pattern(c, n):
    return bytes([c]) * n


# Moment 0: A in chunks 0-2, nothing in 3-7.
srv, h = serve("vm")
h.pwrite(pattern(0x41, 3 * MiB), 0)
h.flush()
h.shutdown()
srv.stop()
files0 = sorted(f for f in os.listdir(d) if f.startswith("vm."))
inodes0 = {f: os.stat(os.path.join(d, f)).st_ino for f in files0
           if f.endswith(".chunk")}

r = ok("snapshot", d, "vm", "s1")
check("generation 0" in r.out, "snapshot output: %r" % r)
check({f: os.stat(os.path.join(d, f)).st_ino for f in inodes0} == inodes0,
      "no chunk file was touched")
meta = open(os.path.join(d, "s1.meta")).read()
check("version=2" in meta and "read-only=1" in meta and "data=vm\n" in meta,
      "snapshot metadata: %s" % meta)
meta = open(os.path.join(d, "vm.meta")).read()
check("generation=1" in meta and "base=s1" in meta, "vm metadata: %s" % meta)

# Moment 1: partial write into a chunk the snapshot holds (copy-up),
# a whole-chunk write, a trim of a whole held chunk (whiteout), a zero
# of part of one, and a write into a chunk nobody had.
srv, h = serve("vm")
check(h.pread(3 * MiB, 0) == pattern(0x41, 3 * MiB), "vm reads through")
h.pwrite(pattern(0x42, 4 * KiB), 10 * KiB)
h.pwrite(pattern(0x43, MiB), MiB)
h.trim(MiB, 2 * MiB)
h.zero(64 * KiB, 100 * KiB)
h.pwrite(pattern(0x44, 512), 5 * MiB)
h.flush()

want1 = bytearray(8 * MiB)
want1[0:3 * MiB] = pattern(0x41, 3 * MiB)
want1[10 * KiB:14 * KiB] = pattern(0x42, 4 * KiB)
want1[MiB:2 * MiB] = pattern(0x43, MiB)
want1[2 * MiB:3 * MiB] = bytes(MiB)
want1[100 * KiB:164 * KiB] = bytes(64 * KiB)
want1[5 * MiB:5 * MiB + 512] = pattern(0x44, 512)
check(h.pread(8 * MiB, 0) == bytes(want1), "vm has the new data")


def data_at(ext, off):
    return next(not (f & 1) for o, n, f in ext if o <= off < o + n)


# Extents: the snapshot's data read through is data, a whiteout a hole.
ext = allocation(h, 8 * MiB)
check(data_at(ext, 0) and data_at(ext, MiB) and data_at(ext, 5 * MiB),
      "data, own or read through, is data: %s" % ext)
check(not data_at(ext, 2 * MiB) and not data_at(ext, 4 * MiB),
      "a whiteout and an absent chunk are holes: %s" % ext)

# The snapshot, served at the same time, twice (read-only both).
s1a, sh = serve("s1")
s1b, sh2 = serve("s1", readonly=True)
want0 = pattern(0x41, 3 * MiB) + bytes(5 * MiB)
check(sh.pread(8 * MiB, 0) == want0, "the snapshot has the old data")
check(sh2.pread(8 * MiB, 0) == want0, "and so has a second server of it")
check(sh.is_read_only(), "a snapshot is read-only")
expect_error(lambda: sh.pwrite(b"x", 0), "a write to a snapshot")
sh.shutdown()
sh2.shutdown()
s1a.stop()
s1b.stop()
h.shutdown()
srv.stop()

check(os.path.exists(os.path.join(d, "vm@1.5.chunk")), "new generation names")
check(os.path.getsize(os.path.join(d, "vm@1.2.chunk")) == 0,
      "a trim over the snapshot's chunk leaves a whiteout")

# A chain of three: s2 after moment 1, then moment 2, s3, moment 3.
ok("snapshot", d, "vm", "s2")
srv, h = serve("vm")
h.pwrite(pattern(0x45, 2 * MiB), 3 * MiB)
h.trim(8 * MiB - 4096, 0)
h.flush()
want2 = bytearray(want1)
want2[3 * MiB:5 * MiB] = pattern(0x45, 2 * MiB)
want2[0:8 * MiB - 4096] = bytes(8 * MiB - 4096)
check(h.pread(8 * MiB, 0) == bytes(want2), "moment 2")
h.shutdown()
srv.stop()
ok("snapshot", d, "vm", "s3")
srv, h = serve("vm")
h.pwrite(pattern(0x46, 3 * MiB), MiB + 7)
h.flush()
want3 = bytearray(want2)
want3[MiB + 7:4 * MiB + 7] = pattern(0x46, 3 * MiB)
check(h.pread(8 * MiB, 0) == bytes(want3), "moment 3")
h.shutdown()
srv.stop()
for snap, want in (("s1", want0), ("s2", bytes(want1)), ("s3", bytes(want2))):
    s, sh = serve(snap, readonly=True)
    check(sh.pread(8 * MiB, 0) == want, "snapshot %s reads its moment" % snap)
    sh.shutdown()
    s.stop()
for name in ("vm", "s1", "s2", "s3"):
    ok("check", d, name)
j = ok("info", d, "vm", "--json").json()
check(j["base"] == "s3" and j["generation"] == 3, "info of vm: %s" % j)
j = ok("info", d, "s1", "--json").json()
check(j["snapshot"] and j["data"] == "vm" and j["dependents"] == "s2 (base)",
      "info of s1: %s" % j)

# A volume never snapshotted: version 1, NAME.<n>.chunk.
srv, h = serve("plain")
h.pwrite(b"p" * MiB, 0)
h.flush()
h.shutdown()
srv.stop()
meta = open(os.path.join(d, "plain.meta")).read()
check("version=1\n" in meta and "generation" not in meta and
      "base" not in meta, "plain metadata: %s" % meta)
check(sorted(f for f in os.listdir(d) if f.startswith("plain")) ==
      ["plain.0.chunk", "plain.meta"], "plain chunk names")
print("ok")
