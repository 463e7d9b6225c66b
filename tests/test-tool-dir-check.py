"""shardkit check on a directory: passes on a good volume (also with
--jobs), and exits 1 naming each bad chunk: a chunk file made longer
than the chunk size at rest, a directory in place of a chunk file, a
chunk file past the end of the volume; a corrupt NAME.meta is a problem
found (1), a missing volume a usage error (2)."""

import os

from shardkit_test import Server, check, tmpdir
from tool_test import MiB, ok, refused, run

d = tmpdir()
ok("create", d, "vol", "16M", "--chunk-size=64K")
srv = Server(["sharded-file", "dir=" + d, "export=vol"])
h = srv.connect()
for n in range(0, 256, 3):
    h.pwrite(bytes([n % 251 + 1]) * 65536, n * 65536)
h.flush()
h.shutdown()
srv.stop()
present = len(range(0, 256, 3))

for jobs in ("1", "4"):
    j = ok("check", d, "vol", "--jobs=" + jobs, "--json").json()
    check(j["ok"] and j["checked"] == present and j["chunks"] == present,
          "good volume, --jobs=%s: %s" % (jobs, j))
r = ok("check", d, "vol")
check("%d chunks read, 0 bad: ok" % present in r.out, r.out)

# Damage at rest.
with open(os.path.join(d, "vol.9.chunk"), "ab") as f:
    f.write(b"garbage past the chunk size")
os.unlink(os.path.join(d, "vol.30.chunk"))
os.mkdir(os.path.join(d, "vol.30.chunk"))
with open(os.path.join(d, "vol.999.chunk"), "wb") as f:
    f.write(b"stray")

r = run("check", d, "vol", "--jobs=3")
check(r.rc == 1, "check of a damaged volume exits 1: %r" % r)
bad_lines = [l for l in r.out.splitlines() if l.startswith("vol: chunk ")]
check(len(bad_lines) == 3, "one line per bad chunk: %r" % r)
check("vol.9.chunk" in bad_lines[0] and "longer than the chunk size" in
      bad_lines[0], "chunk 9 named: %s" % bad_lines)
check("vol.30.chunk" in bad_lines[1] and "not a regular file" in
      bad_lines[1], "chunk 30 named: %s" % bad_lines)
check(bad_lines[2].startswith("vol: chunk 999:") and "past the end" in
      bad_lines[2], "chunk 999 named: %s" % bad_lines)
check("3 bad: BAD" in r.out, "summary: %r" % r)

j = run("check", d, "vol", "--json")
check(j.rc == 1, "--json: still exit 1: %r" % j)
j = j.json()
check(not j["ok"] and [b["chunk"] for b in j["bad"]] == [9, 30, 999],
      "--json lists the bad chunks: %s" % j)

# A corrupt NAME.meta: a problem found.
ok("create", d, "m", "1M")
p = os.path.join(d, "m.meta")
text = open(p).read().replace("size=1048576", "size=2097152")
open(p, "w").write(text)
r = run("check", d, "m")
check(r.rc == 1 and "checksum mismatch" in r.out, "corrupt meta: %r" % r)

refused("check", d, "nosuch", want="does not exist")
