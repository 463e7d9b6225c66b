"""The volume tool on a directory: a volume created by shardkit is served
by nbdkit sharded-file and written and read with nbdsh; list, info and
du report what was written (chunks present, allocated = their spans,
stored = their blocks); every --json output parses; delete removes
every file of the volume and nothing else, with a progress bar on
request."""

import os
import subprocess

from shardkit_test import NBDKIT, Server, check, need_tool, tmpdir
from tool_test import MiB, fingerprint, ok, run

nbdsh = need_tool(os.environ.get("NBDSH") or "nbdsh", "libnbd-bin")
d = tmpdir()
CS = 1 * MiB
SIZE = 64 * MiB

r = ok("create", d, "vm1", "64M", "--chunk-size=1M")
check("vm1" in r.out, "create says what it made: %r" % r)
ok("create", d, "other", "10M")
check(sorted(os.listdir(d)) == ["other.meta", "vm1.meta"],
      "create writes only NAME.meta: %s" % os.listdir(d))

# A fresh volume: no chunks.
j = ok("info", d, "vm1", "--json").json()
check(j["size"] == SIZE and j["chunk_size"] == CS and j["chunks"] == 0 and
      j["allocated"] == 0 and j["chunks_total"] == 64, "fresh info: %s" % j)
check(j["in_use"] is False and j["holder"] is None, "not in use: %s" % j)

# Serve it with the plugin and write with nbdsh: chunks 0-2 whole, 3
# bytes into chunk 40, and the last byte of the volume (chunk 63).
srv = Server(["sharded-file", "dir=" + d])
script = (
    "h.pwrite(b'A' * (3 * %d), 0)\n"
    "h.pwrite(b'xyz', 40 * %d + 5)\n"
    "h.pwrite(b'Z', %d - 1)\n"
    "h.flush()\n" % (CS, CS, SIZE))
subprocess.run([nbdsh, "-u", srv.uri("vm1"), "-c", script], check=True)
out = subprocess.run(
    [nbdsh, "-u", srv.uri("vm1"), "-c",
     "import sys\n"
     "assert h.get_size() == %d\n"
     "assert h.pread(3 * %d, 0) == b'A' * (3 * %d)\n"
     "assert h.pread(3, 40 * %d + 5) == b'xyz'\n"
     "assert h.pread(1, %d - 1) == b'Z'\n"
     "print('read back')\n" % (SIZE, CS, CS, CS, SIZE)],
    check=True, capture_output=True, text=True).stdout
check("read back" in out, "nbdsh read back what it wrote")
srv.stop()

chunk_files = sorted(f for f in os.listdir(d) if f.startswith("vm1.")
                     and f.endswith(".chunk"))
check(chunk_files == ["vm1.%d.chunk" % n for n in (0, 1, 2, 40, 63)],
      "the plugin wrote chunks 0, 1, 2, 40, 63: %s" % chunk_files)
stored = sum(os.stat(os.path.join(d, f)).st_blocks * 512
             for f in chunk_files + ["vm1.meta"])

j = ok("info", d, "vm1", "--json").json()
check(j["chunks"] == 5, "info: 5 chunks: %s" % j)
check(j["allocated"] == 5 * CS, "info: allocated = 5 chunk spans: %s" % j)
check(j["stored"] == stored, "info: stored = blocks of the files "
      "(%d): %s" % (stored, j))
check(j["uuid"] in open(os.path.join(d, "vm1.meta")).read(), "uuid")
check(j["created"].endswith("Z"), "created: %s" % j)
check(j["in_use"] is False, "not in use once nbdkit stopped: %s" % j)

r = ok("info", d, "vm1")
for want in ("size:       %d" % SIZE, "chunks:     5 of 64",
             "allocated:  %d" % (5 * CS), "in use:     no"):
    check(want in r.out, "info shows %r: %s" % (want, r.out))

lst = ok("list", d, "--json").json()
check([v["name"] for v in lst] == ["other", "vm1"], "list: %s" % lst)
vm1 = lst[1]
check(vm1["size"] == SIZE and vm1["chunks"] == 5 and
      vm1["allocated"] == 5 * CS, "list figures: %s" % vm1)
check(lst[0]["chunks"] == 0 and lst[0]["allocated"] == 0,
      "list: other is empty: %s" % lst[0])
r = ok("list", d)
check(r.out.splitlines()[0].split() == ["NAME", "SIZE", "CHUNK-SIZE",
                                        "CHUNKS", "ALLOCATED"],
      "list header: %s" % r.out)
check(len(r.out.splitlines()) == 3, "list: header and 2 volumes: %s" % r.out)

du = ok("du", d, "--json").json()
by = {v["name"]: v["stored"] for v in du["volumes"]}
check(by["vm1"] == stored, "du vm1 = stored: %s" % du)
check(du["total"] == sum(by.values()), "du total: %s" % du)
du1 = ok("du", d, "vm1", "--json").json()
check([v["name"] for v in du1["volumes"]] == ["vm1"], "du NAME: %s" % du1)
ok("du", d)

j = ok("check", d, "vm1", "--json").json()
check(j["ok"] is True and j["checked"] == 5 and j["bad"] == [],
      "check of a good volume: %s" % j)

# Delete: every file of vm1 goes, other is untouched.
before_other = {k: v for k, v in fingerprint(d).items()
                if k.startswith("other.")}
r = ok("delete", d, "vm1", "--progress")
check("5 chunks" in r.out, "delete says how many chunks: %r" % r)
check("delete vm1 [" in r.err and "5/5 (100%)" in r.err,
      "--progress draws a bar on stderr: %r" % r)
left = fingerprint(d)
check(not any(k.startswith("vm1.") for k in left), "vm1 gone: %s" % left)
check({k: v for k, v in left.items() if k.startswith("other.")} ==
      before_other, "other untouched")
check([v["name"] for v in ok("list", d, "--json").json()] == ["other"],
      "list after delete")
# The name is free again.
ok("create", d, "vm1", "1M", "--chunk-size=64K")
