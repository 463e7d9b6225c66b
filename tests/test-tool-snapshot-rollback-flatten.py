"""shardkit rollback and flatten, and deleting snapshots.  rollback VOL
SNAP drops every write since the snapshot (VOL reads SNAP's data again,
its chunks of the dropped generation are gone, SNAP untouched); it is
refused for a snapshot that is not VOL's latest.  flatten copies what a
clone reads from its snapshot into the clone and drops its base: the
clone reads the same, and the snapshot (and the volume it came from)
can then be deleted, chunks and all, while the clone still reads the
same data."""

import json
import os

from shardkit_test import Server, check, tmpdir
from tool_test import MiB, ok, refused

d = tmpdir()
ok("create", d, "vm", "4M", "--chunk-size=1M")


def serve(name, readonly=False):
    srv = Server(["sharded-file", "dir=" + d, "export=" + name],
                 readonly=readonly)
    return srv, srv.connect()


def image(name):
    srv, h = serve(name, readonly=True)
    data = h.pread(4 * MiB, 0)
    h.shutdown()
    srv.stop()
    return data


def write(name, ops):
    srv, h = serve(name)
    for op, off, arg in ops:
        if op == "w":
            h.pwrite(arg, off)
        else:
            h.trim(arg, off)
    h.flush()
    h.shutdown()
    srv.stop()


write("vm", [("w", 0, b"a" * (2 * MiB)), ("w", 3 * MiB, b"z" * 4096)])
img0 = image("vm")
ok("snapshot", d, "vm", "s1")
write("vm", [("w", 10, b"b" * 100), ("t", MiB, MiB), ("w", 2 * MiB, b"c" * 9)])
check(image("vm") != img0, "vm changed")

# Figures: each chunk file counts once, for the volume that reads it as
# its own: s1 the 3 chunks of the frozen generation, vm the 3 of its new
# one (chunk 0 copied up, chunk 1 a whiteout, chunk 2), also when asked
# about one volume alone.
figures = {v["name"]: v for v in json.loads(ok("--json", "list", d).out)}
check(figures["s1"]["chunks"] == 3 and figures["vm"]["chunks"] == 3,
      "list: s1 %d chunks, vm %d (want 3 and 3)"
      % (figures["s1"]["chunks"], figures["vm"]["chunks"]))
for name in ("s1", "vm"):
    one = json.loads(ok("--json", "info", d, name).out)
    check(one["chunks"] == 3 and one["stored"] == figures[name]["stored"],
          "info %s: %d chunks, %d stored (list says %d and %d)"
          % (name, one["chunks"], one["stored"], figures[name]["chunks"],
             figures[name]["stored"]))
ok("snapshot", d, "vm", "s2")
write("vm", [("w", 0, b"d" * MiB)])
img_s2 = image("s2")

refused("rollback", d, "vm", "s1", want="latest snapshot 's2' only")
refused("rollback", d, "s1", "s2", want="is a snapshot")
r = ok("rollback", d, "vm", "s2")
check("1 chunk dropped" in r.out, "rollback output: %r" % r)
check(image("vm") == img_s2, "vm reads s2's data after the rollback")
check(not any(f.startswith("vm@2.") for f in os.listdir(d)),
      "the dropped generation's chunks are gone: %s" % os.listdir(d))
check(image("s1") == img0, "s1 untouched")
write("vm", [("w", 5, b"e" * 5)])
check(image("vm")[5:10] == b"eeeee", "vm writes after a rollback")

# A clone of s1, written, then flattened: it no longer needs s1.
ok("clone", d, "s1", "c")
write("c", [("w", 3 * MiB + 100, b"f" * 10), ("t", 0, 4096)])
img_c = image("c")
r = ok("flatten", d, "c")
check("no base" in r.out, "flatten output: %r" % r)
check(image("c") == img_c, "the clone reads the same after flatten")
j = ok("info", d, "c", "--json").json()
check(j["base"] is None, "no base after flatten: %s" % j)
refused("flatten", d, "c", want="has no base")
refused("flatten", d, "s1", want="is a snapshot")

# vm flattened too: then s2, s1 can go (chunks and all), newest first.
ok("flatten", d, "vm")
img_vm = image("vm")
refused("delete", d, "s1", want="s2 (base)")
ok("delete", d, "s2")
ok("delete", d, "s1")
left = sorted(f for f in os.listdir(d) if f.endswith(".chunk"))
check(all(f.startswith("c.") or f.startswith("vm@3.") for f in left),
      "only the volumes' own chunks are left: %s" % left)
check(image("c") == img_c and image("vm") == img_vm,
      "both read the same after the snapshots are gone")
ok("check", d, "c")
ok("check", d, "vm")
print("ok")
