"""Sets with buckets seen and repaired by the volume tool, on Ceph's
gateway: `shardkit status` and `shardkit scrub` with WHERE a list of
directories and s3://BUCKET/PREFIX items (the tool's --endpoint and
credentials serve every bucket).

- a mirror of 2 buckets and 1 directory, written through nbdkit
  s3-object: status names the server holding each bucket's lease and
  the directory's lock, and scrub is refused naming it; served again
  with bucket 1's endpoint a dead port (write-quorum=2), writes land on
  the two others and bucket 1 lacks them: status says location 1 lacks
  exactly those chunks, with the age of the oldest record (the bitmap
  objects in the bucket, the file in the directory), exit 1; scrub
  copies them from the records and status is healthy again; then one
  chunk object of bucket 0 overwritten with other bytes (its per-64 KiB
  CRC32Cs kept, so they no longer match) and one of bucket 1 deleted:
  scrub repairs exactly these two and says so (text and --json), and a
  second scrub finds nothing;
- an ec:2+1 set over 3 buckets: one bucket's endpoint dead while
  written (ec-min-write=2), status says it lacks those chunks, scrub
  rebuilds its fragments, and the image reads back the same from the
  other two alone.

Under SHARDKIT_VALGRIND the status and scrub runs are under valgrind
too."""

import hashlib
import os

from s3_server import CephRGW, free_port, need_s3_object_plugin
from shardkit_test import Server, check
from tool_test import refused
from tool_test import run as tool_run

KiB = 1024
MiB = KiB * KiB
CHUNK = 64 * KiB
SIZE = 1 * MiB
PREFIX = "p"

need_s3_object_plugin()
s3 = CephRGW()
DEAD = "http://127.0.0.1:%d" % free_port()


def run(*args):
    """shardkit ARGS on the gateway, under valgrind with
    SHARDKIT_VALGRIND."""
    return tool_run(*args, s3=s3, timeout=600, valgrind=True)


def ok(*args):
    r = run(*args)
    check(r.rc == 0, "expected success: %r" % r)
    return r


def bucket_args(b, endpoint=None):
    return ["bucket=" + b, "prefix=" + PREFIX,
            "endpoint=" + (endpoint or s3.endpoint)]


def set_args(locs, *extra):
    """LOCS: ("b", NAME, endpoint or None) or ("d", PATH)."""
    a = ["s3-object", "region=us-east-1", "url-style=path",
         "access-key=" + s3.access_key, "secret-key=" + s3.secret_key,
         "http-retries=0", "timeout=5"]
    for loc in locs:
        if loc[0] == "b":
            a += bucket_args(loc[1], loc[2])
        else:
            a.append("dir=" + loc[1])
    return a + ["export=v", "size=%d" % SIZE, "chunk-size=64K",
                "probe-interval=60s"] + list(extra)


def where(locs):
    return ",".join("s3://%s/%s" % (loc[1], PREFIX) if loc[0] == "b"
                    else loc[1] for loc in locs)


def chunk_key(n):
    return "%s/v.%d.chunk" % (PREFIX, n)


def write(args, writes):
    srv = Server(args)
    h = srv.connect("v")
    for off, data in writes:
        h.pwrite(data, off)
    h.flush()
    h.shutdown()
    srv.stop()


def image(args):
    srv = Server(args, readonly=True)
    h = srv.connect("v")
    d = hashlib.sha256(h.pread(SIZE, 0)).hexdigest()
    h.shutdown()
    srv.stop()
    return d


def status(w, rc):
    r = run("status", w, "v", "--json")
    check(r.rc == rc, "status exit %d: %r" % (rc, r))
    return r.json()


def mirror():
    for b in ("mirror0", "mirror1"):
        s3.create_bucket(b)
    d = os.path.join(s3.dir, "mirror-dir")
    os.mkdir(d)
    locs = [("b", "mirror0", None), ("b", "mirror1", None), ("d", d)]
    W = where(locs)
    args = set_args(locs, "write-quorum=2")
    # Written with every location up: chunks 0-3.
    write(args, [(0, b"a" * (4 * CHUNK))])
    j = status(W, 0)
    check(j["healthy"] and j["redundancy"] == "mirror" and
          [loc["path"] for loc in j["locations"]] ==
          ["s3://mirror0/p", "s3://mirror1/p", d] and
          all(loc["lacking_chunks"] == 0 and loc["held_by"] is None
              for loc in j["locations"]), "healthy, nobody holds it: %s" % j)

    # Served: the leases and the lock are named, scrub is refused.
    srv = Server(args)
    h = srv.connect("v")
    pid = "pid %d" % srv.proc.pid
    j = status(W, 0)
    check(all(loc["held_by"] and pid in loc["held_by"]
              for loc in j["locations"]) and
          "leased" in j["locations"][0]["held_by"],
          "status names the server on each location: %s" % j)
    before = {k: s3.get(k, bucket="mirror0") for k in s3.keys(bucket="mirror0")
              if not k.endswith(".lease")}
    refused("scrub", W, "v", s3=s3, want="s3://mirror0/p is in use: leased "
            "for writing by host")
    refused("scrub", W, "v", s3=s3, want=pid)
    check(before == {k: s3.get(k, bucket="mirror0") for k in s3.keys(bucket="mirror0")
                     if not k.endswith(".lease")}, "the refusal changed "
          "nothing")
    h.shutdown()
    srv.stop()

    # Bucket 1 unreachable while chunks 2 and 8-10 are written: it lacks
    # 4 chunks, recorded on bucket 0 (an object) and in the directory.
    down = [("b", "mirror0", None), ("b", "mirror1", DEAD), ("d", d)]
    write(set_args(down, "write-quorum=2"),
          [(2 * CHUNK, b"b" * CHUNK), (8 * CHUNK, b"c" * (3 * CHUNK))])
    check(s3.exists(PREFIX + "/v.missing.1", bucket="mirror0") and
          os.path.exists(os.path.join(d, "v.missing.1")),
          "records in bucket 0 and in the directory")
    j = status(W, 1)
    l1 = j["locations"][1]
    check(not j["healthy"] and l1["reachable"] and l1["metadata_ok"] and
          l1["lacking_chunks"] == 4 and l1["bytes_behind"] == 4 * CHUNK and
          l1["oldest_record_age"] is not None and
          0 <= l1["oldest_record_age"] < 600 and
          j["locations"][0]["lacking_chunks"] == 0 and
          j["locations"][2]["lacking_chunks"] == 0,
          "status says bucket 1 lacks 4 chunks: %s" % j)
    r = run("status", W, "v")
    check(r.rc == 1 and "1 s3://mirror1/p: up, lacks 4 chunks (256.0 KiB behind, "
          "oldest record" in r.out and "DEGRADED" in r.out,
          "status text: %r" % r)
    want = image(args)

    # Scrub catches it up from the records.
    r = ok("scrub", W, "v")
    check("v: location 1 (s3://mirror1/p): 4 copied from the records, 0 "
          "rewritten, 0 restored, 0 removed" in r.out and
          "7 chunks compared; repaired: 4 copied from the records, 0 "
          "rewritten (differed), 0 restored (missing), 0 removed (stray); "
          "0 not repaired: ok" in r.out, "scrub caught up: %r" % r)
    check(s3.get(chunk_key(9), bucket="mirror1")[:CHUNK] == b"c" * CHUNK,
          "chunk 9 copied to bucket 1")
    check(not s3.exists(PREFIX + "/v.missing.1", bucket="mirror0") and
          not os.path.exists(os.path.join(d, "v.missing.1")),
          "the records emptied")
    j = status(W, 0)
    check(j["healthy"], "healthy after scrub: %s" % j)

    # Damage: chunk 1 of bucket 0 rewritten with other bytes but its
    # digests kept; chunk 9 of bucket 1 deleted.
    head = s3.head(chunk_key(1), bucket="mirror0")
    s3.put(chunk_key(1), b"X" * CHUNK, bucket="mirror0",
           Metadata=head["Metadata"])
    s3.delete(chunk_key(9), bucket="mirror1")
    r = ok("scrub", W, "v", "--json")
    j = r.json()
    check(j["ok"] and j["chunks"] == 7 and j["caught_up"] == 0 and
          j["rewritten"] == 1 and j["restored"] == 1 and
          j["removed"] == 0 and j["not_repaired"] == 0 and
          j["repairs"] == [
              {"chunk": 1, "what": "location 0 (s3://mirror0/p): copy "
               "unreadable: rewritten"},
              {"chunk": 9, "what": "location 1 (s3://mirror1/p): copy "
               "missing: restored"}] and
          [(x["rewritten"], x["restored"]) for x in j["locations"]] ==
          [(1, 0), (0, 1), (0, 0)], "scrub repaired exactly those: %s" % j)
    check(s3.get(chunk_key(1), bucket="mirror0")[:CHUNK] == b"a" * CHUNK and
          s3.get(chunk_key(9), bucket="mirror1")[:CHUNK] == b"c" * CHUNK,
          "the objects are right again")
    r = ok("scrub", W, "v")
    check("0 rewritten (differed), 0 restored (missing)" in r.out and
          "v: chunk" not in r.out and "v: location" not in r.out,
          "a second scrub finds nothing: %r" % r)
    check(image(args) == want, "the image after the scrubs")
    print("mirror of 2 buckets + 1 dir: status, refusal, catch-up, repairs",
          flush=True)


def ec():
    for b in ("ec0", "ec1", "ec2"):
        s3.create_bucket(b)
    locs = [("b", "ec0", None), ("b", "ec1", None), ("b", "ec2", None)]
    W = where(locs)
    args = set_args(locs, "redundancy=ec:2+1", "ec-min-write=2")
    write(args, [(0, b"e" * (2 * CHUNK))])
    down = [("b", "ec0", None), ("b", "ec1", None), ("b", "ec2", DEAD)]
    write(set_args(down, "redundancy=ec:2+1", "ec-min-write=2"),
          [(4 * CHUNK, b"f" * (3 * CHUNK))])
    j = status(W, 1)
    check(j["redundancy"] == "ec" or j["redundancy"].startswith("ec"),
          "redundancy: %s" % j)
    check([loc["lacking_chunks"] for loc in j["locations"]] == [0, 0, 3] and
          j["locations"][2]["oldest_record_age"] is not None,
          "status says bucket 2 lacks 3 chunks: %s" % j)
    j = ok("scrub", W, "v", "--json").json()
    check(j["ok"] and j["redundancy"] == "ec:2+1" and j["caught_up"] == 3 and
          j["chunks"] == 5 and j["rewritten"] == 0 and j["restored"] == 0 and
          [x["caught_up"] for x in j["locations"]] == [0, 0, 3],
          "scrub rebuilt bucket 2's fragments: %s" % j)
    status(W, 0)
    check(all(s3.exists(chunk_key(n), bucket="ec2") for n in (4, 5, 6)),
          "fragments in bucket 2")
    want = image(args)
    # Bucket 0 gone: bucket 1 and the rebuilt bucket 2 give it all.
    alone = set_args([("b", "ec0", DEAD), ("b", "ec1", None),
                      ("b", "ec2", None)], "redundancy=ec:2+1")
    check(image(alone) == want, "the image from buckets 1 and 2")
    print("ec:2+1 over 3 buckets: status, scrub rebuilds", flush=True)


mirror()
ec()
