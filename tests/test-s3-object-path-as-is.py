"""Raw mode sends the key as it is: key=dir/./x.img and key=a/../b.img
(objects stored under exactly those names) are requested as
/BUCKET/dir/./x.img and /BUCKET/a/../b.img (no dot-segment normalising,
which would reach another object) and read back the object's bytes; or
nbdkit refuses such a key at start-up naming it, without ever sending a
normalised path."""

import os

from s3_fault_proxy import FaultProxy, plugin_args_via
from s3_server import CephRGW, need_s3_object_plugin
from shardkit_test import Server, check, fail, skip, start_fails

need_s3_object_plugin()
s3 = CephRGW()
proxy = FaultProxy(s3.port, bucket=s3.bucket)
SIZE = 256 * 1024
decoys = {"dir/x.img": b"D" * SIZE, "b.img": b"B" * SIZE}
tested = 0
for key, normal in (("dir/./x.img", "dir/x.img"), ("a/../b.img", "b.img")):
    body = os.urandom(SIZE)
    try:
        s3.put(key, body)
    except Exception as e:
        print("the server refuses key %s: %s" % (key, e))
        continue
    if key not in s3.keys():
        print("the server did not keep key %s as is: %s" % (key, s3.keys()))
        continue
    s3.put(normal, decoys[normal])
    tested += 1
    proxy.reset_records()
    args = plugin_args_via(s3, proxy, None, ["key=" + key])
    try:
        srv = Server(args, readonly=True)
    except RuntimeError as e:
        out = str(e)
        sent = [r.path for r in proxy.requests]
        check("/%s/%s" % (s3.bucket, normal) not in sent,
              "key=%s: a normalised path was sent: %s" % (key, sent))
        check(key in out, "key=%s refused without naming it:\n%s"
              % (key, out[-1500:]))
        print("key=%s refused at start-up" % key)
        continue
    h = srv.connect()
    check(h.get_size() == SIZE, "key=%s: size %d" % (key, h.get_size()))
    got = h.pread(SIZE, 0)
    check(got == body, "key=%s: read %s" % (key, "the normalised key's "
          "object" if got == decoys[normal] else "wrong bytes"))
    paths = sorted(set(r.path for r in proxy.requests))
    check(paths == ["/%s/%s" % (s3.bucket, key)], "key=%s: paths sent: %s"
          % (key, paths))
    h.shutdown()
    srv.stop()
if not tested:
    skip("the S3 server keeps neither key as is")
print("PASS")
