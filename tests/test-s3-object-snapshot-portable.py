"""Snapshots and clones keep the volume format portable: a volume with
a snapshot and a clone made in a directory by shardkit, synced into a
bucket object for object (as any sync tool would; the objects carry no
shardkit digests), is served by s3-object exactly as sharded-file serves
it: the volume, the snapshot (read-only) and the clone, including a
whiteout in the clone that hides a chunk of the snapshot.  Then a
snapshot taken in the bucket by shardkit, synced back into a directory
file for file, is served by sharded-file the same way.  A clone whose
base is missing from the bucket, or is another volume of that name, is
refused by s3-object and by shardkit with one line."""

import os
import shutil

from s3_server import S3rver, need_s3_object_plugin
from shardkit_test import Server, check, start_fails, tmpdir
from tool_test import MiB, ok, refused

need_s3_object_plugin()
s3 = S3rver()
W = "s3://%s/p" % s3.bucket
SIZE = 4 * MiB


def read_all(args, name):
    srv = Server(args + ["export=" + name])
    h = srv.connect(export=name)
    data = h.pread(SIZE, 0)
    writable = not h.is_read_only()
    h.shutdown()
    srv.stop()
    return data, writable


def file_args(d):
    return ["sharded-file", "dir=" + d]


def bucket_args():
    return ["s3-object"] + s3.plugin_args(prefix="p")


def write(args, name, off, data, trim=None):
    srv = Server(args + ["export=" + name])
    h = srv.connect(export=name)
    h.pwrite(data, off)
    if trim:
        h.trim(trim[1], trim[0])
    h.flush()
    h.shutdown()
    srv.stop()


d = tmpdir()
ok("create", d, "vm", "4M", "--chunk-size=1M")
write(file_args(d), "vm", 0, b"v" * (2 * MiB))
ok("snapshot", d, "vm", "snap")
ok("clone", d, "snap", "c")
# The clone writes its own chunk 1 and trims chunk 0, which the
# snapshot holds: a whiteout.
write(file_args(d), "c", MiB, b"c" * 4096, trim=(0, MiB))
write(file_args(d), "vm", 3 * MiB, b"w" * 4096)
want = {name: read_all(file_args(d), name) for name in ("vm", "snap", "c")}
check(want["c"][0][:MiB] == bytes(MiB), "the clone's trim reads as zeros")
check(want["snap"][0][:2 * MiB] == b"v" * (2 * MiB), "the snapshot holds "
      "the volume's data of its time")
check(not want["snap"][1] and want["c"][1], "snapshot read-only, clone not")

for f in sorted(os.listdir(d)):
    with open(os.path.join(d, f), "rb") as fp:
        s3.put("p/" + f, fp.read())
for name in ("vm", "snap", "c"):
    got = read_all(bucket_args(), name)
    check(got == want[name], "s3-object serves %s as sharded-file does"
          % name)

# shardkit in the bucket: a second snapshot of the volume, a clone of
# it, and writes to both.
ok("snapshot", W, "vm", "snap2", s3=s3)
ok("clone", W, "snap2", "c2", s3=s3)
write(bucket_args(), "c2", 2 * MiB, b"x" * 8192)
write(bucket_args(), "vm", 0, b"y" * 8192)
want2 = {name: read_all(bucket_args(), name)
         for name in ("vm", "snap", "c", "snap2", "c2")}
check(want2["snap2"][0][3 * MiB:3 * MiB + 4096] == b"w" * 4096,
      "snap2 holds the volume's write before it")
check(want2["snap2"][0][:8192] == b"v" * 8192,
      "snap2 does not see the volume's later write")
check(want2["c2"][0][2 * MiB:2 * MiB + 8192] == b"x" * 8192 and
      want2["c2"][0][:8192] == b"v" * 8192, "c2: its own write on snap2")
r = ok("info", W, "snap2", "--json", s3=s3).json()
check(r.get("base") == "snap", "snap2's base is snap: %r" % r)

# Back into a directory, file for object.
d2 = tmpdir()
s3.download_dir(d2, prefix="p/")
for name in want2:
    got = read_all(file_args(d2), name)
    check(got == want2[name], "sharded-file serves %s as s3-object did"
          % name)

# A broken chain in the bucket: snap's metadata gone, then another
# volume named snap in its place.
meta = s3.get("p/snap.meta")
s3.delete("p/snap.meta")
out = start_fails(bucket_args() + ["export=c"])
check("its base 'snap' does not exist" in out, "missing base: %s" % out)
refused("check", W, "c", s3=s3, want="its base 'snap' does not exist")
ok("create", W, "snap", "4M", "--chunk-size=1M", s3=s3)
out = start_fails(bucket_args() + ["export=c"])
check("a different volume of that name" in out, "wrong base: %s" % out)
s3.put("p/snap.meta", meta)
check(read_all(bucket_args(), "c") == want2["c"], "served again once "
      "the base is back")
shutil.rmtree(d2)
print("ok")
