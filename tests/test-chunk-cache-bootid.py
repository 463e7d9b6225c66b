"""chunk-cache: when the machine's boot id cannot be read, a crash of the
machine cannot be ruled out after kill -9, so only what a
durability=local flush synced is trusted (as after a reboot): the
flushed block is written back, the never flushed one is dropped rather
than trusted.  nbdkit runs in a private mount namespace with /dev/null
over /proc/sys/kernel/random/boot_id."""

import os
import random
import subprocess

from chunk_cache_util import MiB, sharded_file_contents
from shardkit_test import (NBDKIT, Server, check, seed_from_env, skip,
                           tmpdir)

BOOT_ID = "/proc/sys/kernel/random/boot_id"
if subprocess.run(["unshare", "-m", "sh", "-c",
                   "mount --bind /dev/null %s && test ! -s %s"
                   % (BOOT_ID, BOOT_ID)],
                  stderr=subprocess.DEVNULL).returncode != 0:
    skip("cannot hide the boot id in a mount namespace here")

wrapper = os.path.join(tmpdir(), "nbdkit-no-boot-id")
with open(wrapper, "w") as f:
    f.write("#!/bin/sh\nexec unshare -m sh -c 'mount --bind /dev/null %s "
            "&& exec \"$@\"' sh %s \"$@\"\n" % (BOOT_ID, NBDKIT))
os.chmod(wrapper, 0o755)

rng = random.Random(seed_from_env())
SIZE = 8 * MiB
d = tmpdir()
cd = tmpdir()
args = ["--filter=chunk-cache", "sharded-file", "dir=" + d, "export=vol",
        "size=%d" % SIZE, "cache-dir=" + cd, "durability=local",
        "cache-block-size=1M"]
srv = Server(args + ["writeback-delay=600"], nbdkit=wrapper)
h = srv.connect()
a = rng.randbytes(MiB)
h.pwrite(a, 0)
h.flush()                              # synced in cache-dir
h.pwrite(rng.randbytes(MiB), 5 * MiB)  # never flushed
srv.kill()
with open(os.path.join(cd, "cache.meta")) as f:
    check("boot-id=\n" in f.read(), "the header has no boot id")

srv = Server(args, nbdkit=wrapper)
srv.stop()
check("1 dropped after a machine crash" in srv.output(),
      "unknown boot id: the unflushed block is dropped, not trusted")
got = sharded_file_contents(d, "vol", SIZE)
check(got[:MiB] == a, "the flushed (synced) block is written back")
check(got[5 * MiB:6 * MiB] == bytes(MiB), "the unflushed block is dropped")
