"""chunk-cache durability=local: zeros and trims go straight to the
plugin (the cache does not keep them), so a flush after them must flush
the plugin too, or a crash could bring the old data back.  A flush
after plain writes still only syncs cache-dir.  Checked with nbdkit's
log filter under the cache."""

import random
import re

from chunk_cache_util import MiB
from shardkit_test import Server, check, seed_from_env, tmpdir

rng = random.Random(seed_from_env())
d = tmpdir()
cd = tmpdir()
log = tmpdir() + "/log"
srv = Server(["--filter=chunk-cache", "--filter=log", "sharded-file",
              "dir=" + d, "export=vol", "size=8M", "cache-dir=" + cd,
              "durability=local", "cache-block-size=1M",
              "writeback-delay=600", "logfile=" + log])
h = srv.connect()


def below():
    """Requests seen below the cache: (kind, returned) in order."""
    with open(log) as f:
        return re.findall(r"\.\.\.(Zero|Trim|Flush|Write) id=\d+ "
                          r"return=(-?\d+)", f.read())


h.pwrite(rng.randbytes(MiB), 0)
h.flush()
check(all(k != "Flush" for k, _ in below()),
      "a flush after plain writes only syncs cache-dir: %r" % below())
for op in ("zero", "trim"):
    n = len(below())
    if op == "zero":
        h.zero(64 * 1024, 3 * MiB + 4096)
    else:
        h.trim(2 * MiB, 4 * MiB)
    h.flush()
    seen = below()[n:]
    kinds = [k for k, _ in seen]
    check(op.capitalize() in kinds and kinds[-1] == "Flush" and
          seen[-1][1] == "0",
          "durability=local flush after a %s flushes the plugin: %r"
          % (op, seen))
h.shutdown()
srv.stop()
