"""shardkit resize on a directory: growing keeps the data and reads
zeros past the old end; shrinking without --force is refused with one
line and changes nothing; with --force the chunks past the new end go,
the last chunk's tail past the new end is zeroed (a later grow shows
zeros, never old data), and chunks left past the old end are removed
before a grow so that they never come back into view."""

import os

from shardkit_test import Server, check, tmpdir
from tool_test import MiB, fingerprint, ok, refused

d = tmpdir()
CS = 1 * MiB
ok("create", d, "v", "8M", "--chunk-size=1M")


def serve():
    return Server(["sharded-file", "dir=" + d, "export=v"])


srv = serve()
h = srv.connect()
pattern = bytes(range(256)) * (8 * MiB // 256)
h.pwrite(pattern, 0)
h.flush()
h.shutdown()
srv.stop()

# Grow.
r = ok("resize", d, "v", "12M")
check("to 12582912 bytes" in r.out, r.out)
srv = serve()
h = srv.connect()
check(h.get_size() == 12 * MiB, "grown size served")
check(h.pread(8 * MiB, 0) == pattern, "data kept")
check(h.pread(4 * MiB, 8 * MiB) == bytes(4 * MiB), "zeros past the old end")
h.shutdown()
srv.stop()

# Shrink without --force: refused, nothing changed.
before = fingerprint(d)
refused("resize", d, "v", "3M", want="--force")
check(fingerprint(d) == before, "refused shrink changed nothing")

# Same size: nothing to do.
r = ok("resize", d, "v", "12M")
check("nothing to do" in r.out, r.out)

# Shrink with --force to 2.5 MiB: chunks 3.. go, chunk 2 is cut.
NEW = 2 * MiB + 512 * 1024
ok("resize", d, "v", str(NEW), "--force")
chunks = sorted(f for f in os.listdir(d) if f.endswith(".chunk"))
check(chunks == ["v.0.chunk", "v.1.chunk", "v.2.chunk"],
      "chunks past the new end removed: %s" % chunks)
check(os.path.getsize(os.path.join(d, "v.2.chunk")) <= 512 * 1024,
      "the last chunk holds nothing past the new end")
j = ok("info", d, "v", "--json").json()
check(j["size"] == NEW and j["chunks"] == 3 and j["allocated"] == NEW,
      "info after shrink: %s" % j)

# A stray chunk past the end appears (left over by someone); growing
# must not serve it.
with open(os.path.join(d, "v.5.chunk"), "wb") as f:
    f.write(b"\xff" * CS)
ok("resize", d, "v", "8M")
check(not os.path.exists(os.path.join(d, "v.5.chunk")),
      "stray chunk removed before growing")
srv = serve()
h = srv.connect()
check(h.get_size() == 8 * MiB, "size after regrow")
check(h.pread(NEW, 0) == pattern[:NEW], "data before the cut kept")
check(h.pread(8 * MiB - NEW, NEW) == bytes(8 * MiB - NEW),
      "zeros after the cut, never the old data or the stray chunk")
h.shutdown()
srv.stop()
j = ok("check", d, "v", "--json").json()
check(j["ok"], "check after resizes: %s" % j)
