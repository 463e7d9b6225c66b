"""sharded-file and the checksum line of NAME.meta: a new volume's
metadata ends with checksum=crc32c:XXXXXXXX; a .meta edited by hand (a
digit of size changed, the checksum line kept) is refused at start-up
with a message naming the file and the mismatch; a .meta from before the
checksum line (none at all) still opens and serves, and is left as it
is."""

import os
import re

from shardkit_test import Server, check, start_fails, tmpdir

KiB = 1024

d = tmpdir()
srv = Server(["sharded-file", "dir=" + d, "export=a", "size=64M",
              "chunk-size=64K"])
h = srv.connect()
h.pwrite(b"A" * 4096, 0)
h.flush()
h.shutdown()
srv.stop()

meta = os.path.join(d, "a.meta")
with open(meta, "rb") as f:
    text = f.read()
lines = text.split(b"\n")
check(lines[-1] == b"", "a.meta ends with a newline")
check(re.fullmatch(rb"checksum=crc32c:[0-9a-f]{8}", lines[-2]),
      "last line of a new a.meta is not a checksum: %r" % lines[-2])
check(b"size=67108864\n" in text, "size line: %r" % text)

# A digit of size changed by hand; the checksum line kept.
with open(meta, "wb") as f:
    f.write(text.replace(b"size=67108864\n", b"size=67108865\n"))
for args in (["export=a"], ["export=a", "size=64M"]):
    out = start_fails(["sharded-file", "dir=" + d] + args)
    check("a.meta" in out and "checksum mismatch" in out,
          "the edited a.meta was not refused with a clear message:\n" + out)
    check(len([l for l in out.splitlines() if "checksum mismatch" in l]) == 1,
          "one line says so:\n" + out)
print("edited metadata refused: ok")

# Metadata from before the checksum line: still opens and serves.
old = text[:text.rindex(b"checksum=")]
check(old.split(b"\n")[-2].startswith(b"created="),
      "old-format text ends with created=: %r" % old)
with open(meta, "wb") as f:
    f.write(old)
srv = Server(["sharded-file", "dir=" + d, "export=a"])
h = srv.connect()
check(h.get_size() == 64 * KiB * KiB, "size of the old-format volume")
check(h.pread(4096, 0) == b"A" * 4096, "data of the old-format volume")
h.pwrite(b"B" * 4096, 65536)
h.flush()
h.shutdown()
srv.stop()
srv = Server(["sharded-file", "dir=" + d, "export=a", "size=64M"])
h = srv.connect()
check(h.pread(4096, 65536) == b"B" * 4096, "old-format volume after restart")
h.shutdown()
srv.stop()
with open(meta, "rb") as f:
    check(f.read() == old, "the old-format a.meta was rewritten")
print("metadata without a checksum line: ok")

# A second volume with an edited .meta, not the default export: refused
# at connection, the default export still served.
srv = Server(["sharded-file", "dir=" + d, "export=b", "size=1M",
              "chunk-size=64K"])
srv.stop()
bmeta = os.path.join(d, "b.meta")
with open(bmeta, "rb") as f:
    btext = f.read()
with open(bmeta, "wb") as f:
    f.write(btext.replace(b"chunk-size=65536", b"chunk-size=65537"))
srv = Server(["sharded-file", "dir=" + d, "export=a"])
try:
    srv.connect("b")
    check(False, "volume b with an edited .meta was served")
except Exception:
    pass
check("b.meta" in srv.output() and "checksum mismatch" in srv.output(),
      "no clear message for b.meta:\n" + srv.output())
h = srv.connect("a")
check(h.pread(4096, 0) == b"A" * 4096, "volume a still served")
h.shutdown()
srv.stop()
print("edited metadata of another volume: ok")
