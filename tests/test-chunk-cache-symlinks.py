"""chunk-cache: every file in cache-dir must be a regular file of its own,
never followed anywhere else.

1. A symbolic link planted in an empty cache-dir in place of cache.data,
   cache.index, cache.meta or cache.lock, pointing to a file outside it,
   is refused at start-up with one clear error line naming the file, and
   the file it points to keeps its bytes (a planted cache.data link used
   to truncate and zero its target).  A dangling link does not create
   its target.
2. The same in a warm cache-dir whose file was moved out and replaced by
   a link to it (so that it looks valid): refused, target unchanged.
3. A FIFO, or a directory, in place of each file: refused promptly with
   an error naming the file (no hang).
4. A link planted at the temporary name cache.meta is written to before
   it is renamed into place: removed, never written through.
5. A link or FIFO planted after start-up, before the first client opens
   the cache files of an empty cache-dir: that client is refused, the
   error names the file, the target is unchanged.
6. A hard link: a cache file in an empty cache-dir that is another name
   of a file outside, or a warm cache file given a second name outside:
   refused at start-up naming the file, the other name unchanged.
7. stats-file=P with a link planted at P.tmp (the name the statistics
   are written to before the rename): the link is replaced, its target
   unchanged, P a regular file with the statistics."""

import os
import random
import re
import shutil
import stat
import time

import nbd

from chunk_cache_util import MiB, read_all
from shardkit_test import VALGRIND, Server, check, seed_from_env, tmpdir

rng = random.Random(seed_from_env())
SIZE = 8 * MiB
d = tmpdir()
outside = tmpdir()
args = ["--filter=chunk-cache", "sharded-file", "dir=" + d, "export=vol",
        "size=%d" % SIZE, "cache-block-size=1M"]
FILES = ("cache.data", "cache.index", "cache.meta", "cache.lock")
# How long a refusal may take: a hang is what is caught (valgrind's leak
# check at exit alone can take seconds).
PROMPT = 60 if VALGRIND else 5


def try_start(cd, timeout=2 * PROMPT):
    """Start nbdkit on cache-dir CD.  If it serves, write and read through
    it (the cache files are opened by the first client) and stop it.
    Returns (served, seconds until it exited or served, output)."""
    t0 = time.monotonic()
    srv = Server(args + ["cache-dir=" + cd], verbose=False, wait=False)
    try:
        srv.wait_ready(timeout=timeout)
    except RuntimeError:
        if srv.proc.poll() is None:
            out = srv.output()
            srv.kill()
            check(False, "nbdkit neither served nor exited in %ds (hung?):\n%s"
                  % (timeout, out))
        return False, time.monotonic() - t0, srv.output()
    took = time.monotonic() - t0
    try:
        h = srv.connect()
        h.pwrite(b"\xaa" * 65536, 0)
        h.flush()
        read_all(h, SIZE)
        h.shutdown()
    except nbd.Error:
        pass
    srv.stop(check_exit=False)
    return True, took, srv.output()


def error_lines(out):
    return [line for line in out.splitlines() if "error:" in line]


def unchanged(what, path, content):
    with open(path, "rb") as f:
        got = f.read()
    check(got == content,
          "%s: the link's target outside cache-dir was changed (%d bytes, "
          "was %d%s)" % (what, len(got), len(content),
                         ", now all zeros" if got and not any(got) else ""))


def refused(what, cd, name, word, link_target=None, content=None):
    """Expect nbdkit to refuse cache-dir CD with one error line naming NAME
    and saying WORD; LINK_TARGET (if any) must still hold CONTENT."""
    served, took, out = try_start(cd)
    if link_target:
        unchanged(what, link_target, content)
    check(not served, "%s: nbdkit served the cache-dir:\n%s" % (what, out))
    # A refusal exits non-zero anyway: valgrind's findings are in the log.
    check(not re.search(r"^==\d+==", out, re.M),
          "%s: valgrind reported errors:\n%s" % (what, out))
    lines = error_lines(out)
    check(len(lines) == 1 and name in lines[0] and word in lines[0],
          "%s: want one error line naming %s and saying %r, got:\n%s"
          % (what, name, word, out))
    print("%s: refused in %.2fs: %s" % (what, took, lines[0]), flush=True)
    return took


def target(content):
    """A file outside cache-dir with CONTENT; returns its path."""
    p = os.path.join(outside, "target-%d" % rng.randrange(1 << 30))
    with open(p, "wb") as f:
        f.write(content)
    return p


# 1. Links in an empty cache-dir.
for name in FILES:
    content = rng.randbytes(3 * MiB + 123)
    t = target(content)
    cd = tmpdir()
    os.symlink(t, os.path.join(cd, name))
    what = "empty cache-dir, %s a symlink" % name
    refused(what, cd, name, "symbolic link", t, content)
    check(os.path.islink(os.path.join(cd, name)),
          "%s: the link itself was replaced" % what)

cd = tmpdir()
dangling = os.path.join(outside, "does-not-exist")
os.symlink(dangling, os.path.join(cd, "cache.data"))
refused("dangling cache.data link", cd, "cache.data", "symbolic link")
check(not os.path.lexists(dangling),
      "dangling cache.data link: its target was created outside cache-dir")

# 2. A warm cache-dir whose files were moved out and linked back.
good = tmpdir()
srv = Server(args + ["cache-dir=" + good])
h = srv.connect()
data = rng.randbytes(SIZE)
h.pwrite(data, 0)
h.flush()
h.shutdown()
srv.stop()
for name in ("cache.data", "cache.index", "cache.meta"):
    cd = tmpdir()
    shutil.rmtree(cd)
    shutil.copytree(good, cd)
    os.unlink(os.path.join(cd, "cache.lock"))
    t = os.path.join(outside, "moved-" + name)
    shutil.move(os.path.join(cd, name), t)
    os.symlink(t, os.path.join(cd, name))
    with open(t, "rb") as f:
        content = f.read()
    what = "warm cache-dir, %s linked to a copy outside" % name
    refused(what, cd, name, "symbolic link", t, content)

# The intact cache-dir still serves its data.
srv = Server(args + ["cache-dir=" + good])
h = srv.connect()
check(read_all(h, SIZE) == data, "the intact cache-dir serves its data")
h.shutdown()
srv.stop()

# 3. FIFOs and directories in place of the files: refused without a hang.
for name in FILES:
    for kind, make, word in (("FIFO", os.mkfifo, "FIFO"),
                             ("directory", os.mkdir, "directory")):
        cd = tmpdir()
        make(os.path.join(cd, name))
        took = refused("%s a %s" % (name, kind), cd, name, word)
        check(took < PROMPT, "%s a %s: refused only after %.1fs"
              % (name, kind, took))

# 4. A link at cache.meta's temporary name is removed, not written through.
content = rng.randbytes(4096)
t = target(content)
cd = tmpdir()
os.symlink(t, os.path.join(cd, "cache.meta.tmp"))
served, _, out = try_start(cd)
check(served, "a stale cache.meta.tmp link: refused:\n%s" % out)
unchanged("cache.meta.tmp a symlink", t, content)
st = os.lstat(os.path.join(cd, "cache.meta"))
check(stat.S_ISREG(st.st_mode), "cache.meta is a regular file")
check(not os.path.lexists(os.path.join(cd, "cache.meta.tmp")),
      "cache.meta.tmp is gone after the rename")

# 5. Planted after the start-up checks: the opens themselves refuse.
for name, kind in [(n, "symbolic link") for n in FILES] + \
                  [("cache.index", "FIFO"), ("cache.meta", "FIFO")]:
    what = "%s a %s planted after start-up" % (name, kind)
    cd = tmpdir()
    srv = Server(args + ["cache-dir=" + cd], verbose=False)
    content = rng.randbytes(MiB + 7)
    t = target(content)
    if kind == "FIFO":
        os.mkfifo(os.path.join(cd, name))
    else:
        os.symlink(t, os.path.join(cd, name))
    try:
        h = srv.connect()
        read_all(h, SIZE)
        check(False, "%s: a client was served" % what)
    except nbd.Error:
        pass
    srv.stop(check_exit=False)
    unchanged(what, t, content)
    lines = [line for line in error_lines(srv.output())
             if "not a regular file" in line]
    check(lines and name in lines[0] and kind in lines[0],
          "%s: want an error naming %s and saying %r, got:\n%s"
          % (what, name, kind, srv.output()))
    print("%s: refused: %s" % (what, lines[0]), flush=True)

# 6. Hard links (the same file system: both are under $TMPDIR).
for name in FILES:
    content = rng.randbytes(MiB + 11)
    t = target(content)
    cd = tmpdir()
    os.link(t, os.path.join(cd, name))
    refused("empty cache-dir, %s a hard link" % name, cd, name,
            "hard links", t, content)
for name in ("cache.data", "cache.index"):
    cd = tmpdir()
    shutil.rmtree(cd)
    shutil.copytree(good, cd)
    other = os.path.join(outside, "second-name-%s-%d"
                         % (name, rng.randrange(1 << 30)))
    os.link(os.path.join(cd, name), other)
    with open(other, "rb") as f:
        content = f.read()
    refused("warm cache-dir, %s with a second name" % name, cd, name,
            "hard links", other, content)

# 7. A link at stats-file's temporary name.
content = rng.randbytes(4096)
t = target(content)
sdir = tmpdir()
stats = os.path.join(sdir, "stats")
os.symlink(t, stats + ".tmp")
srv = Server(args + ["cache-dir=" + tmpdir(), "stats-file=" + stats,
                     "stats-interval=0.1"])
h = srv.connect()
h.pwrite(b"s" * 4096, 0)
deadline = time.monotonic() + PROMPT
while not os.path.exists(stats) and time.monotonic() < deadline:
    time.sleep(0.05)
h.shutdown()
srv.stop()
unchanged("stats-file.tmp a symlink", t, content)
check(os.path.isfile(stats) and not os.path.islink(stats),
      "stats-file was not written as a regular file")
with open(stats) as f:
    check("written-back=" in f.read(), "stats-file holds no statistics")

print("ok")
