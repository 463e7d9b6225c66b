"""The volume tool on a bucket (s3://BUCKET/PREFIX) against Ceph's
gateway, with the credentials chain of s3-object (keys from the
environment): a volume created by shardkit is served by nbdkit
s3-object; list, info and du report the chunk objects it wrote; while
the plugin holds the volume's lease, info names the holder and delete
and resize refuse with one line naming it, changing nothing; after the
plugin's clean stop (lease released) resize grows, refuses to shrink
without --force, shrinks with it (chunk objects past the end deleted,
the last one's tail zeroed); check passes; delete leaves no key of the
volume behind (its lease object included).  Wrong keys: one line,
exit 2."""

from s3_server import CephRGW, chunk_keys, need_s3_object_plugin
from shardkit_test import Server, check
from tool_test import MiB, ok, refused, run

need_s3_object_plugin()
s3 = CephRGW()
W = "s3://%s/vols" % s3.bucket
CS = 1 * MiB


def tool(*a, **kw):
    return ok(*a, s3=s3, **kw)


def vol_keys():
    return sorted(k for k in s3.keys() if k.startswith("vols/v."))


r = tool("create", W, "v", "16M", "--chunk-size=1M")
check(vol_keys() == ["vols/v.meta"], "create: one .meta: %s" % s3.keys())
refused("create", W, "v", "16M", s3=s3, want="already exists")
tool("create", W + "/", "w", "1M")       # "vols/" and "vols" alike
check(s3.exists("vols/w.meta"), "prefix with a slash")

srv = Server(["s3-object"] + s3.plugin_args(prefix="vols") + ["export=v"])
h = srv.connect()
data = bytes(range(256)) * (3 * CS // 256)
h.pwrite(data, 0)                        # chunks 0, 1, 2
h.pwrite(b"tail", 16 * MiB - 4)          # chunk 15
h.flush()
check(chunk_keys(s3.keys(), "v") == [0, 1, 2, 15], "plugin wrote 4 chunks")

j = tool("info", W, "v", "--json").json()
check(j["size"] == 16 * MiB and j["chunk_size"] == CS and j["chunks"] == 4
      and j["allocated"] == 4 * CS, "info figures: %s" % j)
# Stored: the objects' sizes, the lease object's included (its size may
# change with each renewal, so it is bounded, not matched).
stored = sum(sz for k, sz in s3.list("vols/v.").items()
             if not k.endswith(".lease"))
check(stored < j["stored"] <= stored + 4096,
      "stored = object sizes %d + the lease: %s" % (stored, j))
check(j["in_use"] is True and "pid %d" % srv.proc.pid in j["holder"],
      "info names the lease holder (pid %d): %s" % (srv.proc.pid, j))
lst = tool("list", W, "--json").json()
check([v["name"] for v in lst] == ["v", "w"], "list: %s" % lst)
check(lst[0]["chunks"] == 4 and lst[0]["allocated"] == 4 * CS, "%s" % lst)
du = tool("du", W, "--json").json()
check(stored < {v["name"]: v["stored"] for v in du["volumes"]}["v"] <=
      stored + 4096, "du: %s" % du)

before = {k: s3.get(k) for k in vol_keys() if not k.endswith(".lease")}
for args in (("delete", W, "v"), ("resize", W, "v", "32M"),
             ("resize", W, "v", "1M", "--force")):
    r = refused(*args, s3=s3, want="in use")
    check("pid %d" % srv.proc.pid in r.err, "names the holder: %r" % r)
check({k: s3.get(k) for k in vol_keys() if not k.endswith(".lease")} ==
      before, "refusals changed nothing")
check(h.pread(len(data), 0) == data, "served data intact")
h.shutdown()
srv.stop()

j = tool("info", W, "v", "--json").json()
check(j["in_use"] is False, "lease released at the plugin's stop: %s" % j)
check(tool("check", W, "v", "--json").json()["ok"], "check passes")

tool("resize", W, "v", "20M")
refused("resize", W, "v", "2M", s3=s3, want="--force")
NEW = 2 * CS + 4096
tool("resize", W, "v", str(NEW), "--force")
check(chunk_keys(s3.keys(), "v") == [0, 1, 2],
      "chunk objects past the new end deleted: %s" % s3.keys())
check(s3.head("vols/v.2.chunk")["ContentLength"] <= 4096,
      "the last chunk holds nothing past the new end")
# Served at the new size: the last chunk object is no longer than its
# new span (a longer one would be refused as corrupt by every read).
j = tool("check", W, "v", "--json").json()
check(j["ok"] and j["checked"] == 3, "check at the shrunk size: %s" % j)
srv = Server(["s3-object"] + s3.plugin_args(prefix="vols") + ["export=v"])
h = srv.connect()
check(h.get_size() == NEW and h.pread(NEW, 0) == data[:NEW],
      "served at the shrunk size")
h.shutdown()
srv.stop()
tool("resize", W, "v", "8M")
srv = Server(["s3-object"] + s3.plugin_args(prefix="vols") + ["export=v"])
h = srv.connect()
check(h.get_size() == 8 * MiB, "size after the resizes")
check(h.pread(NEW, 0) == data[:NEW], "data before the cut kept")
check(h.pread(8 * MiB - NEW, NEW) == bytes(8 * MiB - NEW), "zeros after it")
h.shutdown()
srv.stop()
j = tool("check", W, "v", "--json", "--jobs=8").json()
check(j["ok"] and j["checked"] == 3, "check after the resizes: %s" % j)

r = tool("delete", W, "v")
check("3 chunks" in r.out, r.out)
check(vol_keys() == [], "no key of the volume left: %s" % s3.keys())
check([v["name"] for v in tool("list", W, "--json").json()] == ["w"],
      "list after delete")

refused("info", W, "gone", s3=s3, want="does not exist")
r = run("list", W, s3=s3, env={"AWS_SECRET_ACCESS_KEY": "wrong"})
check(r.rc == 2 and len(r.err.splitlines()) == 1, "wrong keys: %r" % r)
