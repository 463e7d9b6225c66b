"""A volume moves between a sharded-file directory and an S3 bucket prefix
by copying files to objects one for one (as any sync tool does), both
ways, against Ceph's gateway: sharded-file writes a volume (holes, short
and partly written chunk files, a short last chunk); its files are
uploaded with boto3 under a prefix; s3-object serves the same bytes and
extents, and can rewrite it; the objects are downloaded into a new
directory, and sharded-file serves exactly what s3-object served."""

import hashlib
import os
import random

import nbd

from s3_server import CephRGW, chunk_keys, need_s3_object_plugin
from shardkit_test import Server, allocation, check, seed_from_env, tmpdir

KiB = 1024
MiB = 1024 * KiB
CHUNK = 256 * KiB
SIZE = 12 * MiB + 777          # the last chunk is short

need_s3_object_plugin()
seed = seed_from_env()
rng = random.Random(seed)
s3 = CephRGW()


def image(h):
    return h.pread(SIZE, 0)


def holes(h):
    """Chunk numbers that extents report as holes."""
    out = set()
    for pos, length, flags in allocation(h, SIZE):
        if flags & nbd.STATE_HOLE:
            first = (pos + CHUNK - 1) // CHUNK
            last = (pos + length) // CHUNK
            out.update(range(first, last))
    return out


# 1. sharded-file writes a volume.
d1 = tmpdir()
sf_args = ["sharded-file", "dir=" + d1, "export=port", "size=%d" % SIZE,
           "chunk-size=256K"]
srv = Server(sf_args)
h = srv.connect()
h.pwrite(os.urandom(3 * CHUNK), 0)                      # chunks 0-2 full
h.pwrite(b"start of chunk 5" * 10, 5 * CHUNK)           # short chunk file
h.pwrite(os.urandom(1000), 8 * CHUNK + 100000)          # middle of chunk 8
h.pwrite(os.urandom(5000), SIZE - 5000)                 # the short last chunk
for _ in range(20):
    off = rng.randrange(SIZE - 3000)
    h.pwrite(rng.randbytes(rng.randint(1, 3000)), off)
h.flush()
want = image(h)
want_holes = holes(h)
h.shutdown()
srv.stop()
files = sorted(os.listdir(d1))
print("sharded-file wrote:", files, flush=True)
check("port.meta" in files, "port.meta")

# 2. Files to objects, one for one, with boto3.
s3.upload_dir(d1, "moved/")
check(sorted(k[len("moved/"):] for k in s3.keys("moved/")) == files,
      "one object per file")
s3_args = ["s3-object"] + s3.plugin_args(prefix="moved/") + ["export=port"]
srv = Server(s3_args)
h = srv.connect()
check(h.get_size() == SIZE, "size from the uploaded .meta")
got = image(h)
check(hashlib.sha256(got).digest() == hashlib.sha256(want).digest(),
      "s3-object serves the sharded-file volume byte-identically")
check(holes(h) == want_holes, "same holes: %s vs %s"
      % (sorted(holes(h)), sorted(want_holes)))
# Small reads of objects written by another tool (no digests of ours).
for _ in range(20):
    off = rng.randrange(SIZE - 100)
    check(h.pread(100, off) == want[off:off + 100], "small read at %d" % off)

# 3. s3-object changes the volume: new data, a chunk zeroed away, a
#    partial write into a chunk that another tool wrote.
model = bytearray(want)
for off, n in ((CHUNK - 10, 20), (5 * CHUNK + 3, 7000), (11 * CHUNK, CHUNK)):
    b = rng.randbytes(n)
    h.pwrite(b, off)
    model[off:off + n] = b
h.zero(CHUNK, 2 * CHUNK)
model[2 * CHUNK:3 * CHUNK] = bytes(CHUNK)
h.flush()
check(image(h) == bytes(model), "s3-object's changes")
check(2 not in chunk_keys(s3.keys("moved/"), "port"), "zeroed chunk removed")
s3_image = image(h)
s3_holes = holes(h)
h.shutdown()
srv.stop()

# 4. Objects back to files; sharded-file serves exactly the same.
d2 = tmpdir()
s3.download_dir(d2, "moved/")
check(sorted(os.listdir(d2)) == sorted(k[len("moved/"):]
                                       for k in s3.keys("moved/")),
      "one file per object")
srv = Server(["sharded-file", "dir=" + d2, "export=port"])
h = srv.connect()
check(h.get_size() == SIZE, "size")
check(image(h) == s3_image, "sharded-file serves the s3-object volume "
      "byte-identically")
check(holes(h) == s3_holes, "same holes after moving back")
h.shutdown()
srv.stop()
print("ok")
