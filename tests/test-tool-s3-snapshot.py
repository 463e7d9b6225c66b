"""Snapshots in a bucket of Ceph's gateway with the volume tool: the
rollback, flatten and delete sequence of the directory test
(tests/clone_test.py, rollback_flatten) on a bucket; snapshot, rollback
and delete refused with one line naming the lease holder while
s3-object serves the volume read-write, changing nothing; a snapshot is
served read-only beside its volume; deleting a snapshot that clones
depend on is refused naming them, and info lists a volume's snapshots
and clones; snapshot and clone take a fixed handful of requests (no
listing), none carrying chunk data, however many chunks the volume
holds."""

import types

from clone_test import BucketStore, rollback_flatten, write
from s3_fault_proxy import FaultProxy
from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check
from tool_test import MiB, ok, refused

need_s3_object_plugin()
s3 = CephRGW()


def files(prefix):
    return [k[len(prefix) + 1:] for k in s3.keys(prefix + "/")]


rollback_flatten(BucketStore(s3, "r"), lambda: files("r"))

store = BucketStore(s3, "u")
W = store.where
ok("create", W, "vm", "8M", "--chunk-size=1M", s3=s3)
write(store, "vm", [("w", 0, b"a" * (5 * MiB))])
ok("snapshot", W, "vm", "s1", s3=s3)
srv = Server(store.args("vm"))
h = srv.connect()
h.pwrite(b"b" * 4096, 0)
h.flush()
before = {k: s3.get(k) for k in s3.keys("u/") if not k.endswith(".lease")}
holder = "pid %d" % srv.proc.pid
refused("snapshot", W, "vm", "s2", s3=s3, want=holder)
refused("rollback", W, "vm", "s1", s3=s3, want=holder)
refused("delete", W, "vm", s3=s3, want=holder)
after = {k: s3.get(k) for k in s3.keys("u/") if not k.endswith(".lease")}
check(before == after, "refusals changed nothing")
# The snapshot served read-only beside the volume's writer.
snap = Server(store.args("s1"), readonly=True)
sh = snap.connect()
check(sh.pread(4096, 0) == b"a" * 4096 and h.pread(4096, 0) == b"b" * 4096,
      "the snapshot and the volume served at once, each its own data")
sh.shutdown()
snap.stop()
h.shutdown()
srv.stop()

ok("clone", W, "s1", "c1", s3=s3)
ok("clone", W, "s1", "c2", s3=s3)
refused("delete", W, "s1", s3=s3, want="c1 (base), c2 (base), vm (base)")
j = ok("info", W, "s1", "--json", s3=s3).json()
check(j["snapshot"] is True and all(x in j["dependents"]
                                    for x in ("c1", "c2", "vm")),
      "info lists the clones: %s" % j)

# Requests of a snapshot and a clone, through a recording proxy: no
# chunk object is read, written or copied, nothing is listed, and a
# handful of requests on metadata and the lease do it all, however many
# chunks the volume has.
store = BucketStore(s3, "n")
ok("create", store.where, "big", "64M", "--chunk-size=64K", s3=s3)
write(store, "big", [("w", 0, b"x" * (40 * MiB))])      # 640 chunks
proxy = FaultProxy(s3.port, bucket=s3.bucket)
via = types.SimpleNamespace(endpoint=proxy.endpoint,
                            access_key=s3.access_key,
                            secret_key=s3.secret_key)
for args in (("snapshot", store.where, "big", "bsnap"),
             ("clone", store.where, "bsnap", "bclone")):
    proxy.reset_records()
    ok(*args, s3=via)
    reqs = proxy.find()
    chunky = [r for r in reqs if r.key.endswith(".chunk")]
    check(chunky == [], "%s: no chunk object touched: %s"
          % (args[0], [(r.method, r.key) for r in chunky]))
    # Only the new name may be listed: chunk objects left under it
    # without metadata refuse it (they would be served as its own).
    new = "prefix=n%%2F%s." % args[-1]
    listings = [r for r in reqs if "list-type" in r.query and
                not r.query.endswith(new)]
    check(listings == [], "%s: nothing of the volume listed: %s"
          % (args[0], [r.target for r in listings]))
    check(len(reqs) <= 12, "%s: %d requests: %s" % (
        args[0], len(reqs), [(r.method, r.target) for r in reqs]))
    print("%s of a volume of 640 chunks: %d requests" % (args[0], len(reqs)))
proxy.close()
check(len(files("n")) > 640, "the chunks are there")
print("ok")
