"""chunk-cache over a plugin without multi-conn (nbdkit's multi-conn
filter, multi-conn-mode=disable): zeros and trims reach the plugin
through the client's connection, the cache's own flush goes through the
workers' context, and a flush on one need not cover the other.  So a
client flush (and a FUA zero) after a zero or trim also flushes the
plugin through that connection.  Checked with nbdkit's log filter."""

import re

import nbd

from chunk_cache_util import MiB
from shardkit_test import Server, VALGRIND, check, skip, tmpdir

if VALGRIND:
    # Its own leak at exit (seen without chunk-cache too).
    skip("nbdkit 1.32's multi-conn filter leaks under valgrind")

d = tmpdir()
log = tmpdir() + "/log"
srv = Server(["--filter=chunk-cache", "--filter=multi-conn", "--filter=log",
              "sharded-file", "dir=" + d, "export=vol", "size=8M",
              "cache-block-size=1M", "writeback-delay=600",
              "multi-conn-mode=disable", "multi-conn-track-dirty=off",
              "logfile=" + log])
h = srv.connect()
check(not h.can_multi_conn(), "no multi-conn advertised")


def below():
    """(connection, request) pairs seen below the cache, in order."""
    with open(log) as f:
        return re.findall(r"connection=(\d+) \.\.\.(Zero|Trim|Flush|Write) "
                          r"id=\d+ return=0", f.read())


h.zero(64 * 1024, 4096)
h.flush()
seen = below()
conn = [c for c, k in seen if k == "Zero"][0]
check(any(c == conn and k == "Flush" for c, k in seen),
      "a flush after a zero flushes the plugin on the zero's connection: %r"
      % seen)
n = len(seen)
h.trim(MiB, 2 * MiB, nbd.CMD_FLAG_FUA)
seen = below()[n:]
check(seen and seen[-1] == (conn, "Flush"),
      "a FUA trim flushes the plugin on its connection: %r" % seen)
h.shutdown()
srv.stop()
