"""chunk-cache with cache-dir on a full tmpfs: a zero punches a hole in a
cached block; reading that hole through a shared mapping would make the
kernel allocate a page, and on a full tmpfs that is SIGBUS (nbdkit
dies).  The read must return zeros and nbdkit must live on."""

import os
import subprocess

from chunk_cache_util import MiB
from shardkit_test import Server, check, on_exit, skip, tmpdir

mnt = tmpdir()
if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt],
                  stderr=subprocess.DEVNULL).returncode != 0:
    skip("cannot mount a tmpfs here")
on_exit(lambda: subprocess.run(["umount", "-l", mnt]))

d = tmpdir()
srv = Server(["--filter=chunk-cache", "sharded-file", "dir=" + d,
              "export=v", "size=8M", "cache-dir=" + mnt,
              "cache-block-size=1M", "readahead=0"])
h = srv.connect()
h.pwrite(b"\x55" * MiB, 0)
h.flush()
check(h.pread(MiB, 0) == b"\x55" * MiB, "block 0 cached")
h.zero(256 * 1024, 0)                   # a hole in a cached block
# Something else fills the file system.
filler = os.path.join(mnt, "filler")
fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
try:
    while True:
        os.write(fd, b"\1" * 4096)
except OSError:
    pass
os.close(fd)
got = h.pread(64 * 1024, 0)
check(got == bytes(64 * 1024), "the zeroed range reads as zeros")
check(srv.proc.poll() is None, "nbdkit is alive")
os.unlink(filler)
h.shutdown()
srv.stop()
