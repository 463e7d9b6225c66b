"""chunk-cache: the cache file cut short while the server runs.  Never
SIGBUS (which would kill every connection), never zeros: once the cut is
seen (a read runs into the end of the file, a write finds the file's
tail gone, or a flush does) clean blocks are read from the plugin, reads
of dirty blocks and writes that need the cache fail with EIO, nothing is
written back, flushes fail, and the next start refuses the directory.
Tried three ways: the cut first seen by a read; by a write (writes look
at the tail at most every 100 ms, so the test waits past that: the file
is then never extended again); and by a flush right after a write that
ran before any look and extended the cut file again, leaving holes."""

import errno
import os
import random
import time

import nbd

from chunk_cache_util import MiB, read_all, sharded_file_contents
from shardkit_test import Server, check, seed_from_env, start_fails, tmpdir

rng = random.Random(seed_from_env())
SIZE = 8 * MiB


def expect_eio(what, fn):
    try:
        fn()
    except nbd.Error as e:
        check(e.errnum == errno.EIO, "%s: errno %s, expected EIO (%s)"
              % (what, e.errno, e.string))
        return
    check(False, "%s succeeded on a cache file cut short" % what)


def run(first_seen_by):
    d = tmpdir()
    cd = tmpdir()
    args = ["--filter=chunk-cache", "sharded-file", "dir=" + d,
            "export=vol", "size=%d" % SIZE, "cache-block-size=1M",
            "cache-dir=" + cd, "writeback-delay=60", "readahead=0"]
    srv = Server(args)
    h = srv.connect()
    old = rng.randbytes(SIZE)
    h.pwrite(old, 0)
    h.flush()
    check(read_all(h, SIZE) == old, "first read back differs")

    # Block 7 dirty (60 s before write-back), then the cache file loses
    # its second half.
    h.pwrite(rng.randbytes(MiB), 7 * MiB)
    data = os.path.join(cd, "cache.data")
    os.truncate(data, 4 * MiB)

    if first_seen_by == "read":
        # A clean block in the lost half: the read runs into the end.
        # Its bytes are the plugin's, so it is not an error to read it
        # from there, but this first read is where the cut is found.
        try:
            got = h.pread(4096, 5 * MiB + 100)
            check(got == old[5 * MiB + 100:5 * MiB + 4196],
                  "block 5 read back wrong data")
        except nbd.Error as e:
            check(e.errnum == errno.EIO, "block 5: errno %s" % e.errno)
    elif first_seen_by == "write":
        # A write into the dirty block past the cut: without the check
        # it would extend the file and leave the lost bytes as holes.
        time.sleep(0.3)
        expect_eio("write into dirty block 7",
                   lambda: h.pwrite(b"x" * 4096, 8 * MiB - 4096))
    else:
        # The same write at once: it may run before any look at the tail
        # and extend the file to its old size, the lost bytes now holes.
        # The flush looks, whatever the write did.
        try:
            h.pwrite(b"x" * 4096, 8 * MiB - 4096)
        except nbd.Error as e:
            check(e.errnum == errno.EIO, "write: errno %s" % e.errno)
        expect_eio("flush after the cut", h.flush)
    check(srv.proc.poll() is None, "nbdkit died:\n" + srv.output())

    # From now on: clean blocks from the plugin (never zeros), dirty
    # block 7 EIO, writes that need the cache EIO, flush EIO.
    check(h.pread(MiB, 5 * MiB) == old[5 * MiB:6 * MiB],
          "clean block 5 is not the plugin's data")
    check(h.pread(MiB, 0) == old[:MiB], "clean block 0 differs")
    expect_eio("read of dirty block 7", lambda: h.pread(MiB, 7 * MiB))
    expect_eio("write into block 6", lambda: h.pwrite(b"y" * 4096, 6 * MiB))
    expect_eio("flush", h.flush)
    check(srv.proc.poll() is None, "nbdkit died:\n" + srv.output())
    if first_seen_by != "flush":
        check(os.path.getsize(data) == 4 * MiB,
              "the cut cache file was extended to %d bytes"
              % os.path.getsize(data))
    out = srv.output()
    check("cut short while in use" in out,
          "no log line about the cut cache file:\n" + out)
    h.shutdown()
    srv.stop(timeout=30, check_exit=False)

    # The plugin never got zeros (or anything else) for block 7.
    check(sharded_file_contents(d, "vol", SIZE) == old,
          "the volume below the cache changed")
    # And the directory is refused at the next start.
    out = start_fails(args)
    check("truncated or replaced" in out,
          "the cut cache-dir was not refused:\n" + out)


run("read")
run("write")
run("flush")
print("ok")
