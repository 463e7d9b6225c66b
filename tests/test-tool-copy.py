"""shardkit copy: a volume in a directory, written at random through
nbdkit sharded-file (writes of 1 byte to 3 MiB, trims, a chunk left
holding only zeros), copied to a bucket on Ceph's gateway and from
there to a second directory, serves the same at each step (qemu-img
compare over NBD of the original and the copy), with metadata byte for
byte the same, no more chunks than the original (the one of zeros not
copied), and check passing on both copies.  A chain (a volume with two
snapshots and a clone of the first, the clone with a whiteout over a
chunk its snapshot holds) copied directory -> bucket -> directory: the
clone copied first takes the snapshot with it, the volume copied next
takes its other snapshot and uses the first one as it is; each reads
the same at the end as at the start (qemu-img compare; the clone also
in the bucket), metadata byte for byte, the whiteout still an empty
chunk (file and object) reading as zeros, no staging volume left, and
the chains check in the bucket and the last directory.  --json and
--progress."""

import os
import random
import subprocess

from s3_server import CephRGW, chunk_keys, need_s3_object_plugin
from shardkit_test import (Server, check, need_tool, seed_from_env, tmpdir)
from tool_test import MiB, ok

qemu_img = need_tool("qemu-img", "qemu-utils")
need_s3_object_plugin()
seed = seed_from_env()
rng = random.Random(seed)
SIZE = 32 * MiB
CS = 1 * MiB


def chunk_files(d, stem):
    """Chunk numbers of the chunk files STEM.<n>.chunk in D."""
    out = set()
    for f in os.listdir(d):
        if f.startswith(stem + ".") and f.endswith(".chunk"):
            n = f[len(stem) + 1:-len(".chunk")]
            if n.isdigit():
                out.add(int(n))
    return out


def dir_server(d, name):
    return Server(["sharded-file", "dir=" + d, "export=" + name],
                  readonly=True)


def compare(a, b, what):
    """qemu-img compare of two servers' exports: the same bytes."""
    p = subprocess.run([qemu_img, "compare", "-f", "raw", "-F", "raw",
                        a.uri(), b.uri()], capture_output=True, text=True)
    check(p.returncode == 0, "%s: qemu-img compare: %s%s"
          % (what, p.stdout, p.stderr))


def meta(d, name):
    with open(os.path.join(d, name + ".meta"), "rb") as f:
        return f.read()


# The original: random writes and trims through the plugin.
d1 = tmpdir()
ok("create", d1, "vm", str(SIZE), "--chunk-size=1M")
srv = Server(["sharded-file", "dir=" + d1, "export=vm"])
h = srv.connect()
for i in range(40):
    n = rng.choice((1, 512, 4096, 65536, 300000, MiB, 3 * MiB))
    off = rng.randrange(SIZE - n)
    h.pwrite(rng.randbytes(n), off)
for i in range(6):
    n = rng.choice((4096, MiB, 2 * MiB + 12345))
    h.trim(n, rng.randrange(SIZE - n))
h.trim(CS, 31 * CS)
# Chunk 31: 4 KiB of data, then overwritten with zeros in place: its
# file stays, holding nothing.
h.pwrite(b"\x01" * 4096, 31 * CS)
h.pwrite(bytes(4096), 31 * CS)
h.flush()
h.shutdown()
srv.stop()
orig = chunk_files(d1, "vm")
check(31 in orig, "chunk 31 holds zeros and exists: %s" % sorted(orig))

s3 = CephRGW()
W = "s3://%s/vols" % s3.bucket

# Directory -> bucket.
r = ok("copy", d1, "vm", W, "--jobs=3", s3=s3)
check("verified" in r.out and "1 volume," in r.out, "summary: %r" % r)
in_bucket = set(chunk_keys(s3.keys("vols/"), "vm"))
check(in_bucket == orig - {31},
      "the bucket holds the chunks with data: %s vs %s"
      % (sorted(in_bucket), sorted(orig)))
check(s3.get("vols/vm.meta") == meta(d1, "vm"), "metadata copied exactly")
check(ok("check", W, "vm", "--json", s3=s3).json()["ok"], "check in bucket")

# Bucket -> second directory, with --json and a progress bar.
d2 = tmpdir()
r = ok("copy", W, "vm", d2, "--json", "--progress", s3=s3)
j = r.json()
check(j["ok"] and j["chunks"] == len(in_bucket) and
      j["volumes"] == [{"name": "vm", "copied": True,
                        "chunks": len(in_bucket),
                        "bytes": j["bytes"], "zeros": 0}],
      "--json: %s" % j)
check("copy vm [" in r.err, "--progress draws a bar: %r" % r.err)
check(meta(d2, "vm") == meta(d1, "vm"), "metadata the same after two copies")
check(chunk_files(d2, "vm") == in_bucket, "sparse in the second directory")
check(ok("check", d2, "vm", "--json").json()["ok"], "check in d2")
j = ok("info", d2, "vm", "--json").json()
check(j["allocated"] == len(in_bucket) * CS, "allocated: %s" % j)

a = dir_server(d1, "vm")
b = dir_server(d2, "vm")
c = Server(["s3-object"] + s3.plugin_args(prefix="vols") + ["export=vm"],
           readonly=True)
compare(a, b, "dir -> bucket -> dir")
compare(a, c, "dir -> bucket")
for s in (a, b, c):
    s.stop()

# A chain: vm2 <- s2 <- s1, and clone c1 of s1 with its own writes.
ok("create", d1, "vm2", "8M", "--chunk-size=1M")
srv = Server(["sharded-file", "dir=" + d1, "export=vm2"])
h = srv.connect()
h.pwrite(rng.randbytes(6 * MiB), 0)
h.shutdown()
srv.stop()
ok("snapshot", d1, "vm2", "s1")
ok("clone", d1, "s1", "c1")
srv = Server(["sharded-file", "dir=" + d1, "export=c1"])
h = srv.connect()
h.trim(CS, 2 * CS)                        # a whiteout over s1's chunk 2
h.pwrite(rng.randbytes(5000), 3 * CS + 100)   # copy-up of chunk 3
h.pwrite(rng.randbytes(CS), 7 * CS)
h.shutdown()
srv.stop()
srv = Server(["sharded-file", "dir=" + d1, "export=vm2"])
h = srv.connect()
h.pwrite(rng.randbytes(2 * MiB), 4 * MiB)
h.trim(CS, 0)
h.shutdown()
srv.stop()
ok("snapshot", d1, "vm2", "s2")
srv = Server(["sharded-file", "dir=" + d1, "export=vm2"])
h = srv.connect()
h.pwrite(rng.randbytes(4096), 5 * CS)
h.shutdown()
srv.stop()
check(os.path.getsize(os.path.join(d1, "c1.2.chunk")) == 0,
      "c1 has a whiteout")

# Directory -> bucket -> directory, each in two copies: the clone (with
# s1), then the volume (with s2, using s1 as it is).
WC = "s3://%s/chain" % s3.bucket
d3 = tmpdir()
for frm, to in ((d1, WC), (WC, d3)):
    r = ok("copy", frm, "c1", to, s3=s3)
    check("copied snapshot s1" in r.out and "2 volumes" in r.out,
          "the clone takes its snapshot: %r" % r)
    r = ok("copy", frm, "vm2", to, s3=s3)
    check("copied snapshot s2" in r.out and "2 volumes" in r.out and
          "1 more in" in r.out, "the volume uses s1 as it is: %r" % r)
check(s3.head("chain/c1.2.chunk")["ContentLength"] == 0,
      "the whiteout is an empty object in the bucket")
for name in ("vm2", "s1", "s2", "c1"):
    check(meta(d3, name) == meta(d1, name), "%s: metadata copied" % name)
    check(s3.get("chain/%s.meta" % name) == meta(d1, name),
          "%s: metadata copied to the bucket" % name)
    check(ok("check", d3, name, "--json").json()["ok"], "check %s" % name)
    check(ok("check", WC, name, "--json", s3=s3).json()["ok"],
          "check %s in the bucket" % name)
    a = dir_server(d1, name)
    b = dir_server(d3, name)
    compare(a, b, "chain: " + name)
    if name == "c1":
        c = Server(["s3-object"] + s3.plugin_args(prefix="chain") +
                   ["export=c1"], readonly=True)
        compare(a, c, "chain in the bucket: c1")
        c.stop()
        h = b.connect("c1")
        check(h.pread(CS, 2 * CS) == bytes(CS), "the whiteout reads zeros")
        check(h.pread(CS, CS) == a.connect("c1").pread(CS, CS),
              "the chunk beside it reads through to s1")
        h.shutdown()
    a.stop()
    b.stop()
check(os.path.getsize(os.path.join(d3, "c1.2.chunk")) == 0,
      "the whiteout is copied as an empty chunk")
for stem in ("vm2", "vm2@1", "vm2@2", "c1"):
    check(chunk_files(d3, stem) <= chunk_files(d1, stem),
          "%s: no chunk more than in the original" % stem)
check(sorted(f for f in os.listdir(d3) if f.endswith(".meta")) ==
      ["c1.meta", "s1.meta", "s2.meta", "vm2.meta"],
      "no staging volume left: %s" % os.listdir(d3))
check(sorted(k for k in s3.keys("chain/") if k.endswith(".meta")) ==
      ["chain/c1.meta", "chain/s1.meta", "chain/s2.meta", "chain/vm2.meta"],
      "no staging volume left in the bucket")
print("ok")
