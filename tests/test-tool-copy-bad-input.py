"""shardkit copy refuses, with one line and exit 2, changing nothing in
either place: DEST the same directory as WHERE (also through a symlink
or "dir/."), an unknown volume, a bad DEST (s3:// without a bucket, a
missing directory, a file), a bad NAME, a missing DEST, an option copy
does not take, a volume that exists at DEST (also while a server has it
open read-write there), a source volume a server has open read-write, a
base at DEST that is another volume of that name, chunk files at DEST
without a volume (and chunk objects in a bucket, which the store's own
create refuses too), and a snapshot whose chunk names a volume at DEST
reads already.  Damage at the source is a problem found (exit 1): a
chunk file longer than a chunk in a directory, a flipped byte in a
chunk object in a bucket (s3rver, damaged at rest) are named, and
nothing of the volume is left at DEST.  A write that fails at DEST
(ENOSPC, injected) is exit 2 and leaves nothing.  A copy killed before
its last step leaves a volume with another uuid than the source, which
the next copy refuses; once it is deleted the copy works."""

import os
import signal
import subprocess
import time

from s3_server import S3rver, need_s3_object_plugin
from shardkit_test import (Server, check, fault_injector, put_state, tmpdir)
from tool_test import MiB, TOOL, fingerprint, ok, refused, run

CS = 1 * MiB
shim, faults = fault_injector()


def fill(d, name, data):
    """Write DATA at offset 0 of volume NAME in D through the plugin."""
    srv = Server(["sharded-file", "dir=" + d, "export=" + name])
    h = srv.connect()
    h.pwrite(data, 0)
    h.shutdown()
    srv.stop()


def read_all(d, name):
    srv = Server(["sharded-file", "dir=" + d, "export=" + name],
                 readonly=True)
    h = srv.connect()
    data = h.pread(h.get_size(), 0)
    h.shutdown()
    srv.stop()
    return data


def refused_unchanged(*args, want, dirs, **kw):
    before = [fingerprint(d) for d in dirs]
    refused(*args, want=want, **kw)
    check([fingerprint(d) for d in dirs] == before,
          "copy %s changed a directory" % " ".join(args))


# The source: vm (generation 1 after its snapshot s1), clone c1 of s1.
src = tmpdir()
data = os.urandom(6 * MiB)
ok("create", src, "vm", "8M", "--chunk-size=1M")
fill(src, "vm", data)
ok("snapshot", src, "vm", "s1")
ok("clone", src, "s1", "c1")
fill(src, "vm", b"v" * 4096)
fill(src, "c1", b"c" * 4096)
dst = tmpdir()
both = (src, dst)

# Usage and places.
refused_unchanged("copy", src, "vm", src, want="same place", dirs=both)
refused_unchanged("copy", src, "vm", src + "/.", want="same place",
                  dirs=both)
link = os.path.join(tmpdir(), "link")
os.symlink(src, link)
refused_unchanged("copy", link, "vm", src, want="same place", dirs=both)
refused_unchanged("copy", src, "nosuch", dst, want="does not exist",
                  dirs=both)
refused_unchanged("copy", src, "vm", "s3://", want="no bucket name",
                  dirs=both)
refused_unchanged("copy", src, "vm", os.path.join(dst, "missing"),
                  want="No such file", dirs=both)
afile = os.path.join(tmpdir(), "file")
open(afile, "w").close()
refused_unchanged("copy", src, "vm", afile, want="Not a directory",
                  dirs=both)
refused_unchanged("copy", src, "bad/name", dst, want="bad/name", dirs=both)
refused_unchanged("copy", src, "vm", want="usage", dirs=both)
refused_unchanged("copy", src, "vm", dst, "--force", want="does not take",
                  dirs=both)

# A source volume served read-write is not copied: it could change.
srv = Server(["sharded-file", "dir=" + src, "export=c1"])
h = srv.connect()                         # the plugin opens it now
refused_unchanged("copy", src, "c1", dst, want="in use", dirs=both)
h.shutdown()
srv.stop()

# DEST has the volume already, also while a server writes it there.
ok("copy", src, "vm", dst)
check(read_all(dst, "vm") == b"v" * 4096 + data[4096:] + bytes(2 * MiB),
      "the first copy reads right")
refused_unchanged("copy", src, "vm", dst, want="already exists", dirs=both)
srv = Server(["sharded-file", "dir=" + dst, "export=vm"])
h = srv.connect()
refused_unchanged("copy", src, "vm", dst, want="already exists", dirs=both)
check(h.pread(4096, 0) == b"v" * 4096, "the served copy is untouched")
h.shutdown()
srv.stop()

# c1's base s1 is at DEST (with vm) and used as it is; but a volume
# named s1 that is not that snapshot is refused.
other = tmpdir()
ok("create", other, "s1", "8M", "--chunk-size=1M")
refused_unchanged("copy", src, "c1", other, want="is not the base",
                  dirs=(src, other))

# Chunk files at DEST that no volume reads would join the copy.
strays = tmpdir()
with open(os.path.join(strays, "vm@1.3.chunk"), "wb") as f:
    f.write(b"stray")
refused_unchanged("copy", src, "vm", strays, want="no volume reads",
                  dirs=(src, strays))

# A snapshot whose chunks (vm@0 = "vm") another snapshot at DEST reads.
d7 = tmpdir()
ok("create", d7, "vm", "8M", "--chunk-size=1M")
fill(d7, "vm", b"x" * MiB)
ok("snapshot", d7, "vm", "t1")
refused_unchanged("copy", d7, "t1", dst, want="those of volume 's1'",
                  dirs=(d7, dst))

# A chunk file longer than a chunk at the source: named, exit 1, and
# nothing of the volume is left at DEST.
bad = tmpdir()
ok("create", bad, "v", "4M", "--chunk-size=1M")
fill(bad, "v", os.urandom(4 * MiB))
with open(os.path.join(bad, "v.2.chunk"), "ab") as f:
    f.write(b"!")
d8 = tmpdir()
r = run("copy", bad, "v", d8, "--jobs=2")
check(r.rc == 1 and r.out.startswith("v: chunk 2: ") and
      "longer than the chunk size" in r.out and "BAD" in r.out,
      "a long chunk file is named: %r" % r)
check(os.listdir(d8) == [], "nothing left at DEST: %s" % os.listdir(d8))
j = run("copy", bad, "v", d8, "--json").json()
check(not j["ok"] and [(b["volume"], b["chunk"]) for b in j["bad"]] ==
      [("v", 2)], "--json names it: %s" % j)
os.truncate(os.path.join(bad, "v.2.chunk"), CS)

# A flipped byte in a chunk object at rest (s3rver): its CRC32C fails.
need_s3_object_plugin()
s3 = S3rver()
W = "s3://%s/p" % s3.bucket
ok("copy", bad, "v", W, s3=s3)
s3.corrupt("p/v.1.chunk", offset=70000)
r = run("copy", W, "v", d8, s3=s3)
check(r.rc == 1 and r.out.startswith("v: chunk 1: ") and
      "p/v.1.chunk" in r.out and "CRC32C" in r.out,
      "a flipped byte in a bucket is named: %r" % r)
check(os.listdir(d8) == [], "nothing left at DEST: %s" % os.listdir(d8))

# Chunk objects without a volume in a bucket: copy refuses them before
# writing anything, and so does the store's own create.
s3.put("p/w.0.chunk", b"stray")
before = s3.keys()
ok("create", bad, "w", "1M")
refused("copy", bad, "w", W, s3=s3, want="no volume reads")
refused("create", W, "w", "1M", s3=s3, want="chunk objects")
check(s3.keys() == before, "refusals left the bucket as it was")

# A write that fails at DEST: exit 2, nothing left.
env = {"LD_PRELOAD": shim, "SHARDKIT_FAULT_DIR": faults}
put_state(faults, "enospc-pwrite")
r = run("copy", bad, "v", d8, env=env)
put_state(faults, "enospc-pwrite", on=False)
check(r.rc == 2 and "No space left" in r.err and "chunk" in r.err,
      "ENOSPC at DEST: %r" % r)
check(os.listdir(d8) == [], "nothing left at DEST: %s" % os.listdir(d8))

# Killed while it syncs the chunks, before the metadata's last step.
put_state(faults, "slow-fdatasync", value=5000)
e = dict(os.environ, **env)
p = subprocess.Popen([TOOL, "copy", bad, "v", d8], env=e,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.monotonic() + 20
while time.monotonic() < deadline and \
        len([f for f in os.listdir(d8) if f.endswith(".chunk")]) < 4:
    time.sleep(0.05)
time.sleep(0.3)
p.send_signal(signal.SIGKILL)
p.wait()
put_state(faults, "slow-fdatasync", on=False)
check(sorted(os.listdir(d8)) ==
      ["v.0.chunk", "v.1.chunk", "v.2.chunk", "v.3.chunk", "v.meta"],
      "killed: the staging volume is left: %s" % os.listdir(d8))
uuid = ok("info", bad, "v", "--json").json()["uuid"]
check(ok("info", d8, "v", "--json").json()["uuid"] != uuid,
      "an interrupted copy does not have the source's uuid")
refused_unchanged("copy", bad, "v", d8, want="already exists",
                  dirs=(bad, d8))
ok("delete", d8, "v")
ok("copy", bad, "v", d8)
check(read_all(d8, "v") == read_all(bad, "v"), "copied after the delete")
print("ok")
