"""sharded-file: every volume in dir= is an export.  Listing (nbdinfo
--list and libnbd opt_list) names every volume with its size in the
description; a missing volume is a clean NBD error and the server keeps
serving; hostile export names are refused without touching the file
system (nothing created, nothing read outside dir=, server alive)."""

import json
import os
import subprocess

import nbd

from shardkit_test import Server, check, fail, need_tool, tmpdir

MiB = 1024 * 1024
nbdinfo = need_tool("nbdinfo", "libnbd-bin")

top = tmpdir()
d = os.path.join(top, "vols")
os.mkdir(d)
# A file beside dir= that a path traversal would reach.
with open(os.path.join(top, "secret.meta"), "w") as f:
    f.write("format=shardkit-volume\nversion=1\nsize=1048576\n")

# Create three volumes (export= with size= creates at start-up).
for name, size, cs in (("alpha", 16 * MiB, None), ("beta", 3 * MiB + 5, "64K"),
                       ("g-a_m.m4", MiB, None)):
    a = ["sharded-file", "dir=" + d, "export=" + name, "size=%d" % size]
    if cs:
        a.append("chunk-size=" + cs)
    s = Server(a)
    s.stop()

# A server with no export=: clients must name the volume.
srv = Server(["sharded-file", "dir=" + d])


def listing():
    return sorted(os.listdir(top)), sorted(os.listdir(d))


# nbdinfo --list --json
out = subprocess.run([nbdinfo, "--list", "--json", srv.uri()],
                     capture_output=True, text=True)
check(out.returncode == 0, "nbdinfo --list: %s" % out.stderr)
j = json.loads(out.stdout)
exports = {e["export-name"]: e for e in j["exports"]}
check(sorted(exports) == ["alpha", "beta", "g-a_m.m4"],
      "listed exports: %s" % sorted(exports))
check(exports["beta"]["export-size"] == 3 * MiB + 5, "beta size")
for name, size in (("alpha", 16 * MiB), ("beta", 3 * MiB + 5),
                   ("g-a_m.m4", MiB)):
    desc = exports[name].get("description", "")
    check(str(size) in desc, "size %d in the description of %s: %r"
          % (size, name, desc))

# libnbd's own listing (NBD_OPT_LIST), descriptions included.
h = nbd.NBD()
h.set_opt_mode(True)
h.connect_unix(srv.sock)
seen = {}
h.opt_list(lambda name, desc: seen.__setitem__(name, desc) or 0)
h.opt_abort()
check(sorted(seen) == ["alpha", "beta", "g-a_m.m4"], "opt_list: %s" % seen)
check("65536-byte chunks" in seen["beta"] and str(3 * MiB + 5) in seen["beta"],
      "beta description: %r" % seen["beta"])

# Each volume is its own export, with its own data.
ha = srv.connect("alpha")
hb = srv.connect("beta")
check(ha.get_size() == 16 * MiB and hb.get_size() == 3 * MiB + 5, "sizes")
ha.pwrite(b"A" * 1000, 4 * MiB - 500)
hb.pwrite(b"B" * 1000, 64 * 1024 - 500)
check(ha.pread(1000, 4 * MiB - 500) == b"A" * 1000, "alpha data")
check(hb.pread(1000, 64 * 1024 - 500) == b"B" * 1000, "beta data")
check(hb.pread(1000, 4 * MiB - 500 - 2 * MiB) == bytes(1000),
      "beta does not see alpha's data")
check(sorted(f for f in os.listdir(d) if f.startswith("beta.")) ==
      ["beta.0.chunk", "beta.1.chunk", "beta.meta"], "beta's chunks")


def refused(name, why):
    h = nbd.NBD()
    h.set_export_name(name)
    try:
        h.connect_unix(srv.sock)
    except nbd.Error:
        return
    fail("export %r (%s) was served" % (name, why))


before = listing()
# A missing volume: a clean NBD error, and nothing is created.
refused("nosuch", "missing volume")
# No default export configured.
refused("", "empty name without export=")
hostile = [
    ("../vols/alpha", "slash and dot-dot"),
    ("..", "dot-dot"),
    ("../secret", "path traversal to a file beside dir="),
    ("a/b", "slash"),
    ("/alpha", "absolute path"),
    (".alpha", "leading dot"),
    (".", "dot"),
    ("alpha\n", "newline"),
    ("al\x01pha", "control character"),
    ("al\x7fpha", "DEL"),
    ("alpha\t", "tab"),
    ("x" * 201, "201 bytes"),
    ("a" * 4096, "4096 bytes"),
    ("alpha beta", "space"),
    ("alpha.0.chunk/../alpha", "slash inside"),
]
for name, why in hostile:
    refused(name, why)
# A 200-byte name is valid, merely missing.
refused("v" * 200, "200 bytes, missing")

check(listing() == before, "the file system was not touched: %s vs %s"
      % (listing(), before))
log = srv.output()
check("export name refused" in log, "refusals are logged")
check("does not exist" in log and "nosuch" in log,
      "a missing volume is named in the log")

# The server still serves, on the connections it had and on new ones.
check(ha.pread(1000, 4 * MiB - 500) == b"A" * 1000, "alpha still served")
h = srv.connect("g-a_m.m4")
check(h.get_size() == MiB, "new connection after the refusals")
h.shutdown()
ha.shutdown()
hb.shutdown()
check(srv.proc.poll() is None, "server alive")
srv.stop()

# With export=, the empty name means that volume; others stay reachable.
srv = Server(["sharded-file", "dir=" + d, "export=beta"])
h = srv.connect("")
check(h.get_size() == 3 * MiB + 5, "default export is beta")
check(h.pread(1000, 64 * 1024 - 500) == b"B" * 1000, "beta data via default")
h.shutdown()
h = srv.connect("alpha")
check(h.get_size() == 16 * MiB, "alpha by name beside a default")
h.shutdown()
out = subprocess.run([nbdinfo, "--list", "--json", srv.uri()],
                     capture_output=True, text=True)
j = json.loads(out.stdout)
check(sorted(e["export-name"] for e in j["exports"]) ==
      ["alpha", "beta", "g-a_m.m4"], "listing with a default export")
srv.stop()
check(listing() == before, "nothing created")
print("ok")
