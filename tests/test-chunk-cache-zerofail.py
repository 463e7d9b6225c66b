"""chunk-cache: a zero whose cached copy cannot be zeroed (a cache-dir on
ramfs, which cannot punch holes, with injected ENOSPC on the zeros
written instead, tests/fault-inject.c) must not leave the old data in
the cache: neither served from a clean copy nor written back from a
dirty one over the plugin's zeros.  The request may fail instead."""

import os
import random
import subprocess

import nbd

from chunk_cache_util import MiB
from shardkit_test import (Server, check, fault_injector, on_exit,
                           seed_from_env, skip, tmpdir)

shim, faults = fault_injector()
mnt = tmpdir()
if subprocess.run(["mount", "-t", "ramfs", "ramfs", mnt],
                  stderr=subprocess.DEVNULL).returncode != 0:
    skip("cannot mount a ramfs here")
on_exit(lambda: subprocess.run(["umount", "-l", mnt]))

rng = random.Random(seed_from_env())
enospc = os.path.join(faults, "enospc-pwrite")
Z = 64 * 1024

# nbdkit's memory plugin below: its zero does not pwrite, so only the
# cache's own file sees the fault.
srv = Server(["--filter=chunk-cache", "memory", "size=8M",
              "cache-dir=" + mnt, "cache-block-size=1M",
              "writeback-delay=600"],
             env={"LD_PRELOAD": shim, "SHARDKIT_FAULT_DIR": faults})
h = srv.connect()
clean = rng.randbytes(MiB)
dirty = rng.randbytes(MiB)
h.pwrite(clean, 0)
h.flush()                               # block 0: written back, clean
h.pwrite(dirty, MiB)                    # block 1: dirty for 600 s
for what, off, old in (("clean", 4096, clean), ("dirty", MiB + 4096, dirty)):
    open(enospc, "w").close()
    try:
        h.zero(Z, off)
        zeroed = True
    except nbd.Error:
        zeroed = False
    os.unlink(enospc)
    got = h.pread(Z, off)
    print("%s block: zero %s, reads %s" % (
        what, "succeeded" if zeroed else "failed",
        "zeros" if got == bytes(Z) else
        "the old data" if got == old[4096:4096 + Z] else "other data"),
        flush=True)
    if zeroed:
        check(got == bytes(Z), "%s block: zero succeeded but the cache "
              "serves other data" % what)
h.flush()                               # the dirty block goes below
h.shutdown()
srv.stop()
