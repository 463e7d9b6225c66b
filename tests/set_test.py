"""Helpers for the tests of sets of locations (mirror, erasure coding):
whole-image digests, and waiting for the catch-up to empty the records
of what each location lacks (NAME.missing.L files)."""

import glob
import hashlib
import os
import time

from shardkit_test import VALGRIND, fail

KiB = 1024
MiB = 1024 * KiB


def digest(h, size, step=8 * MiB):
    d = hashlib.sha256()
    pos = 0
    while pos < size:
        n = min(step, size - pos)
        d.update(h.pread(n, pos))
        pos += n
    return d.hexdigest()


def missing_files(dirs):
    return [f for d in dirs for f in glob.glob(os.path.join(d, "*.missing.*"))]


def wait_caught_up(srv, dirs, timeout=120 if VALGRIND else 30):
    """Wait until no location lacks anything: every NAME.missing.L gone."""
    deadline = time.monotonic() + timeout
    while missing_files(dirs):
        if time.monotonic() > deadline:
            fail("not caught up after %ds: %s\n%s" % (
                timeout, missing_files(dirs), srv.output()[-3000:]))
        time.sleep(0.1)
