"""The S3 test servers themselves: the Ceph gateway starts on loopback,
checks what S3 checks (SigV4 signature, Content-MD5, the signed payload
SHA-256), serves ranged GETs and paginates ListObjectsV2; restarting the
gateway alone keeps the data; stop() leaves no process behind.  s3rver
starts and a test can change an object's bytes at rest."""

import hashlib
import http.client
import os

import botocore.exceptions

from s3_server import CephRGW, S3rver, md5_b64, proc_state
from shardkit_test import check, fail


def s3_error(fn, *args, **kw):
    """Run FN expecting an S3 error; return its code."""
    try:
        fn(*args, **kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    fail("%s succeeded although it should have failed" % fn.__name__)


def gone(pid):
    return proc_state(pid) in (None, "Z", "X")


# --- Ceph RADOS Gateway -------------------------------------------------
ceph = CephRGW()
print("ceph gateway ready in %.2f s on %s" % (ceph.start_seconds,
                                              ceph.endpoint), flush=True)
# Printed, not asserted: start-up time is a figure (1.6-1.7 s on an idle
# machine, over 30 s on a loaded one), and only a hang is a failure.
check(ceph.start_seconds < 180, "ceph start took %.1f s" % ceph.start_seconds)

data = os.urandom(100000)
ceph.put("dir/obj", data)
check(ceph.get("dir/obj") == data, "whole GET")

# Ranged GET: exactly the bytes asked for.
check(ceph.get("dir/obj", 1000, 4096) == data[1000:5096], "ranged GET")
check(ceph.get("dir/obj", 99990) == data[99990:], "open-ended ranged GET")
r = ceph.s3.get_object(Bucket=ceph.bucket, Key="dir/obj",
                       Range="bytes=10-19")
check(r["ContentRange"] == "bytes 10-19/100000", "Content-Range header")

# A wrong secret: SignatureDoesNotMatch; an unknown key: InvalidAccessKeyId.
bad = ceph.client(secret_key="not-the-secret")
check(s3_error(bad.get_object, Bucket=ceph.bucket, Key="dir/obj") ==
      "SignatureDoesNotMatch", "wrong secret refused")
check(s3_error(bad.put_object, Bucket=ceph.bucket, Key="x", Body=b"x") ==
      "SignatureDoesNotMatch", "wrong secret refused on PUT")
check(s3_error(ceph.client(access_key="NOSUCHKEY").list_objects_v2,
               Bucket=ceph.bucket) == "InvalidAccessKeyId", "unknown key")
check(not ceph.exists("x"), "refused PUT stored nothing")

# Content-MD5 of other bytes: BadDigest, nothing stored.
check(s3_error(ceph.put, "md5", b"the body",
               ContentMD5=md5_b64(b"other bytes")) == "BadDigest",
      "bad Content-MD5 refused")
check(not ceph.exists("md5"), "BadDigest PUT stored nothing")
ceph.put("md5", b"the body", ContentMD5=md5_b64(b"the body"))
check(ceph.get("md5") == b"the body", "good Content-MD5 accepted")

# A body other than the one whose SHA-256 was signed: refused.
conn = http.client.HTTPConnection("127.0.0.1", ceph.port, timeout=10)
st, _, body = ceph.signed_request(
    conn, "PUT", "sha", b"B" * 100,
    payload_sha256=hashlib.sha256(b"A" * 100).hexdigest())
check(st == 400 and b"XAmzContentSHA256Mismatch" in body,
      "payload SHA-256 mismatch refused: %d %r" % (st, body[:200]))
conn.close()
conn = http.client.HTTPConnection("127.0.0.1", ceph.port, timeout=10)
st, _, _ = ceph.signed_request(conn, "PUT", "sha", b"A" * 100)
check(st == 200, "raw signed PUT: %d" % st)
st, _, body = ceph.signed_request(conn, "GET", "sha")   # same connection
check(st == 200 and body == b"A" * 100, "raw signed GET on kept-alive conn")
conn.close()

# ListObjectsV2 pagination with continuation tokens.
for i in range(25):
    ceph.put("page/%03d" % i, b"%d" % i)
pages, keys, token = 0, [], None
while True:
    kw = dict(Bucket=ceph.bucket, Prefix="page/", MaxKeys=10)
    if token:
        kw["ContinuationToken"] = token
    r = ceph.s3.list_objects_v2(**kw)
    pages += 1
    keys += [o["Key"] for o in r["Contents"]]
    if not r["IsTruncated"]:
        break
    token = r["NextContinuationToken"]
check(pages == 3, "25 keys in pages of 10: %d pages" % pages)
check(keys == ["page/%03d" % i for i in range(25)], "all keys, in order")
check(len(ceph.keys("page/")) == 25, "list() helper follows continuation")
ceph.delete_prefix("page/")
check(ceph.keys("page/") == [], "DeleteObjects removed them")

# Missing bucket.
check(s3_error(ceph.s3.list_objects_v2, Bucket="no-such-bucket") ==
      "NoSuchBucket", "missing bucket")

# Restarting the gateway alone keeps the data; while it is stopped,
# clients get connection refused.
gw_pid = ceph.gw.pid
ceph.stop_gateway(kill=True)
check(gone(gw_pid), "gateway stopped")
try:
    c = http.client.HTTPConnection("127.0.0.1", ceph.port, timeout=5)
    c.request("GET", "/")
    c.getresponse()
    fail("gateway still answers after stop_gateway()")
except ConnectionRefusedError:
    pass
ceph.start_gateway()
check(ceph.get("dir/obj") == data, "data kept across a gateway restart")

pids = ceph.pids()
check(sorted(pids) == ["gw", "mon", "osd"], "three daemons")
ceph.stop()
for name, pid in pids.items():
    check(gone(pid), "%s (pid %d) stopped" % (name, pid))

# --- s3rver ---------------------------------------------------------------
s3r = S3rver()
print("s3rver ready in %.2f s on %s" % (s3r.start_seconds, s3r.endpoint),
      flush=True)
s3r.put("vol/x.0.chunk", data, Metadata={"shardkit-test": "1"})
check(s3r.get("vol/x.0.chunk") == data, "s3rver GET")
check(s3r.get("vol/x.0.chunk", 500, 10) == data[500:510], "s3rver ranged GET")
check(s3r.head("vol/x.0.chunk")["Metadata"] == {"shardkit-test": "1"},
      "s3rver keeps user metadata")
path = s3r.object_path("vol/x.0.chunk")
check(os.path.isfile(path), "object is a plain file: " + path)
with open(path, "rb") as f:
    check(f.read() == data, "file holds the object's bytes")
etag = s3r.head("vol/x.0.chunk")["ETag"]
old = s3r.corrupt("vol/x.0.chunk", 4242)
check(old == data[4242:4243], "corrupt() returns the old byte")
got = s3r.get("vol/x.0.chunk")
check(len(got) == len(data) and got != data, "changed bytes served")
check(got[4242] == data[4242] ^ 0xff and got[:4242] == data[:4242],
      "exactly one byte changed")
check(s3r.head("vol/x.0.chunk")["ETag"] == etag,
      "ETag unchanged: only a digest of our own can see it")
s3r.truncate("vol/x.0.chunk", 1000)
check(s3r.get("vol/x.0.chunk") == data[:1000], "truncated at rest")
pid = s3r.proc.pid
s3r.stop()
check(gone(pid), "s3rver stopped")
print("ok")
