"""s3-object never serves bytes changed at rest, against s3rver (which
keeps objects as plain files a test can edit; it does not check
signatures, and its ETag stays the MD5 of the original bytes): a flipped
byte in a chunk object, a chunk object cut short and damaged volume
metadata are EIO (or a refusal to start) with a log line, never wrong
data or zeros; a partial write into a damaged chunk must not launder the
damage into a freshly digested object; other chunks, and other parts of
the damaged chunk where a checksum proves them intact, keep working; a
full rewrite heals the chunk."""

import os

import nbd

from s3_server import S3rver, chunk_keys, need_s3_object_plugin
from shardkit_test import Server, check, fail, start_fails

KiB = 1024
MiB = 1024 * KiB
CHUNK = MiB

need_s3_object_plugin()
s3 = S3rver()
args = ["s3-object"] + s3.plugin_args(prefix="c/") + [
    "export=vol", "size=8M", "chunk-size=1M"]
srv = Server(args)
h = srv.connect()
data = os.urandom(6 * CHUNK)
h.pwrite(data, 0)
h.flush()
check(h.pread(6 * CHUNK, 0) == data, "written")
h.shutdown()
srv.stop()
keys = s3.keys("c/")
check(chunk_keys(keys, "vol") == list(range(6)), "6 chunk objects: %s" % keys)


def key(n):
    return [k for k in keys if k.endswith("vol.%d.chunk" % n)][0]


def eio(h, length, offset, what):
    """A read that must fail: never wrong data, never zeros."""
    try:
        got = h.pread(length, offset)
    except nbd.Error as e:
        check(e.errno == "EIO", "%s: EIO expected, got %s" % (what, e))
        return
    if got == data[offset:offset + length]:
        fail("%s: read succeeded with the original bytes, which are no "
             "longer stored anywhere" % what)
    fail("%s: WRONG DATA served (%s)" % (what, "zeros" if not any(got)
                                          else "changed bytes"))


def good_or_eio(h, length, offset, what):
    """A read that may fail but must never return wrong data.  Returns
    True if it succeeded."""
    try:
        got = h.pread(length, offset)
    except nbd.Error as e:
        check(e.errno == "EIO", "%s: %s" % (what, e))
        return False
    check(got == data[offset:offset + length], "%s: WRONG DATA" % what)
    return True


# 1. One flipped byte in the middle of chunk 1 (offset 300000 in the
#    object: the 5th 64 KiB sub-block).
s3.corrupt(key(1), 300000)
srv = Server(args)
h = srv.connect()
eio(h, 4096, CHUNK + 300000 - 1000, "small read over the flipped byte")
eio(h, 1, CHUNK + 300000, "1-byte read of the flipped byte")
eio(h, CHUNK, CHUNK, "whole chunk with the flipped byte")
eio(h, 2 * CHUNK, CHUNK // 2, "read spanning chunks 0-2")
out = srv.output()
check("vol.1.chunk" in out, "the log names the damaged object:\n"
      + out[-2000:])
# Parts of chunk 1 far from the damage: checksummed separately, so they
# may be served (correctly) or refused, never wrong.
far_ok = good_or_eio(h, 4096, CHUNK + 800000, "read far from the damage")
print("read of an intact sub-block of the damaged chunk: %s"
      % ("served" if far_ok else "EIO"), flush=True)
# Other chunks are fine; the server keeps serving.
check(h.pread(CHUNK, 0) == data[:CHUNK], "chunk 0 intact")
check(h.pread(4096, 3 * CHUNK + 5) == data[3 * CHUNK + 5:3 * CHUNK + 4101],
      "chunk 3 intact")

# A partial write elsewhere in chunk 1 is a read-modify-write of the
# damaged object: it must fail rather than store the damage under new
# digests.  Either way the damaged byte may never be served.
try:
    h.pwrite(b"W" * 100, CHUNK + 900000)
    wrote = True
except nbd.Error as e:
    check(e.errno == "EIO", "RMW over damage: %s" % e)
    wrote = False
print("partial write into the damaged chunk: %s"
      % ("accepted" if wrote else "EIO"), flush=True)
h.shutdown()
srv.stop()
srv = Server(args)
h = srv.connect()
eio(h, 1, CHUNK + 300000, "flipped byte after a write attempt and restart")

# A full rewrite of chunk 1 needs no read and heals it.
h.pwrite(data[CHUNK:2 * CHUNK], CHUNK)
check(h.pread(CHUNK, CHUNK) == data[CHUNK:2 * CHUNK], "chunk 1 healed")

# 2. Chunk 2 cut short at rest (a short body): the missing tail is not
#    zeros, it is an error; the part before the cut may be served.
s3.truncate(key(2), 400000)
h.shutdown()
srv.stop()
srv = Server(args)
h = srv.connect()
eio(h, 4096, 2 * CHUNK + 600000, "read beyond the cut")
eio(h, CHUNK, 2 * CHUNK, "whole short chunk")
good_or_eio(h, 4096, 2 * CHUNK + 100000, "read before the cut")

# 3. Flipped bytes at the very start and the very end of chunk 4.
s3.corrupt(key(4), 0)
s3.corrupt(key(4), CHUNK - 1)
eio(h, 512, 4 * CHUNK, "first sector of chunk 4")
eio(h, 512, 5 * CHUNK - 512, "last sector of chunk 4")
check(h.pread(CHUNK, 5 * CHUNK) == data[5 * CHUNK:], "chunk 5 intact")
h.shutdown()
srv.stop()

# 4. Damaged volume metadata: a clean refusal naming the problem.
meta = [k for k in keys if k.endswith("vol.meta")][0]
text = s3.get(meta)
s3.put(meta, text.replace(b"format=shardkit-volume", b"format=shardkit-volumX"))
out = start_fails(args)
check("format" in out or "meta" in out, "damaged .meta refused:\n" + out)
s3.put(meta, text[:len(text) // 2])
out = start_fails(args)
check("meta" in out, "truncated .meta refused:\n" + out)
print("ok")
