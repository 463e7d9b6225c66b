"""Snapshots and clones are directories-only for now: a clone and a
snapshot made in a directory by shardkit, synced into a bucket object
for object (as any sync tool would), are refused by s3-object and by
shardkit on the bucket with one line, never served without their base
(which would read wrong data).  The volume they came from, a plain one,
is not affected; shardkit snapshot on a bucket says it is not supported."""

import os

from s3_server import S3rver, need_s3_object_plugin
from shardkit_test import Server, check, start_fails, tmpdir
from tool_test import MiB, ok, refused

need_s3_object_plugin()
s3 = S3rver()
W = "s3://%s/p" % s3.bucket

d = tmpdir()
ok("create", d, "plain", "4M", "--chunk-size=1M")
ok("create", d, "vm", "4M", "--chunk-size=1M")
with open(os.path.join(d, "vm.0.chunk"), "wb") as f:
    f.write(b"v" * 4096)
ok("snapshot", d, "vm", "snap")
ok("clone", d, "snap", "c")
for f in os.listdir(d):
    with open(os.path.join(d, f), "rb") as fp:
        s3.put("p/" + f, fp.read())

for name in ("c", "snap", "vm"):
    out = start_fails(["s3-object"] + s3.plugin_args(prefix="p") +
                      ["export=" + name])
    check("not supported in a bucket yet" in out,
          "s3-object refuses %s: %s" % (name, out))
    refused("info", W, name, s3=s3, want="not supported in a bucket yet")
srv = Server(["s3-object"] + s3.plugin_args(prefix="p") + ["export=plain"])
h = srv.connect()
check(h.get_size() == 4 * MiB, "a plain volume is served")
h.shutdown()
srv.stop()
refused("snapshot", W, "plain", "s2", s3=s3, want="not supported in a bucket")
print("ok")
