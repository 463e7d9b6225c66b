"""shardkit check on a bucket, against s3rver (whose objects are plain
files a test can damage at rest): a good volume passes; a chunk object
whose bytes changed at rest (its size, ETag and metadata unchanged)
fails its per-sub-block CRC32C and is named, exit 1; an object synced
in by another tool (no CRC metadata, plain-MD5 ETag) passes when intact
and is named when damaged at rest; an object cut short at rest is
named; a chunk object past the end and a .meta damaged at rest are
problems found (exit 1); a clone's own chunk damaged at rest is named
with its key, its snapshot still clean."""

from s3_server import S3rver, need_s3_object_plugin
from shardkit_test import Server, check
from tool_test import MiB, ok, run

need_s3_object_plugin()
s3 = S3rver()
W = "s3://%s/p" % s3.bucket
CS = 1 * MiB

ok("create", W, "v", "8M", "--chunk-size=1M", s3=s3)
srv = Server(["s3-object"] + s3.plugin_args(prefix="p") + ["export=v"])
h = srv.connect()
for n in range(4):
    h.pwrite(bytes([n + 1]) * CS, n * CS)
h.flush()
h.shutdown()
srv.stop()
# Chunks 5 and 6 as another tool would put them: no shardkit metadata.
s3.put("p/v.5.chunk", b"\x05" * CS)
s3.put("p/v.6.chunk", b"\x06" * CS)

j = ok("check", W, "v", "--json", s3=s3).json()
check(j["ok"] and j["checked"] == 6, "good volume: %s" % j)

s3.corrupt("p/v.1.chunk", offset=200000)     # sub-block 3 of chunk 1
s3.corrupt("p/v.6.chunk", offset=5)          # no CRCs: the ETag tells
s3.truncate("p/v.3.chunk", CS // 2)          # cut short at rest

r = run("check", W, "v", "--jobs=3", s3=s3)
check(r.rc == 1, "damaged volume: exit 1: %r" % r)
bad = [l for l in r.out.splitlines() if l.startswith("v: chunk ")]
check(len(bad) == 3, "three bad chunks: %r" % r)
check(bad[0].startswith("v: chunk 1:") and "p/v.1.chunk" in bad[0] and
      "CRC32C mismatch" in bad[0], "chunk 1 named: %s" % bad)
check(bad[1].startswith("v: chunk 3:") and "p/v.3.chunk" in bad[1],
      "chunk 3 named: %s" % bad)
check(bad[2].startswith("v: chunk 6:") and "p/v.6.chunk" in bad[2] and
      "ETag" in bad[2], "chunk 6 named: %s" % bad)
check("6 chunks read, 3 bad: BAD" in r.out, r.out)

j = run("check", W, "v", "--json", s3=s3)
check(j.rc == 1, "--json: exit 1")
check([b["chunk"] for b in j.json()["bad"]] == [1, 3, 6], j.out)

# A chunk object past the end of the volume: the listing is refused
# naming it (a problem found, exit 1), as the plugin refuses to open it.
s3.put("p/v.99.chunk", b"stray")
r = run("check", W, "v", s3=s3)
check(r.rc == 1 and "p/v.99.chunk" in r.out and "past the end" in r.out,
      "a chunk past the end named: %r" % r)
s3.delete("p/v.99.chunk")

# Corrupt metadata (a byte changed at rest): exit 1, saying so.
ok("create", W, "m", "1M", s3=s3)
s3.corrupt("p/m.meta", offset=60)
r = run("check", W, "m", s3=s3)
check(r.rc == 1 and "corrupt volume metadata" in r.out,
      "corrupt metadata: %r" % r)

# A clone: a chunk it wrote itself (copied up from the snapshot, then
# changed) corrupted at rest is named by check on the clone, with its
# own key; the snapshot it reads through stays clean.
ok("create", W, "base", "4M", "--chunk-size=1M", s3=s3)
srv = Server(["s3-object"] + s3.plugin_args(prefix="p") + ["export=base"])
h = srv.connect()
h.pwrite(b"b" * (3 * CS), 0)
h.flush()
h.shutdown()
srv.stop()
ok("snapshot", W, "base", "bs", s3=s3)
ok("clone", W, "bs", "cl", s3=s3)
srv = Server(["s3-object"] + s3.plugin_args(prefix="p") + ["export=cl"])
h = srv.connect()
h.pwrite(b"c" * 4096, 2 * CS + 100)
h.flush()
h.shutdown()
srv.stop()
check(ok("check", W, "cl", "--json", s3=s3).json()["ok"], "clean clone")
s3.corrupt("p/cl.2.chunk", offset=70000)
r = run("check", W, "cl", s3=s3)
bad = [l for l in r.out.splitlines() if l.startswith("cl: chunk ")]
check(r.rc == 1 and len(bad) == 1 and bad[0].startswith("cl: chunk 2:")
      and "p/cl.2.chunk" in bad[0], "the clone's chunk named: %r" % r)
check(ok("check", W, "bs", "--json", s3=s3).json()["ok"],
      "the snapshot is clean")
