"""sharded-file: a 1 TiB volume (262144 chunks of 4 MiB, sparse) with a few
thousand chunks touched from several connections.  Open descriptors stay
bounded by max-open-files (checked in /proc/PID/fd while the load runs),
the default works under a low `ulimit -n`, flush syncs chunks whose
descriptors were closed meanwhile, and every byte reads back."""

import os
import random
import resource

import nbd

from shardkit_test import Server, VALGRIND, check, seed_from_env, tmpdir

MiB = 1024 * 1024
TiB = 1024 * 1024 * MiB
CHUNK = 4 * MiB
NCHUNKS = TiB // CHUNK
TOUCH = 300 if VALGRIND else 3000
MAX_OPEN = 16
CONNS = 4

seed = seed_from_env()
rng = random.Random(seed)

# The test (and the servers it starts) run with a soft limit of 1024 fds:
# the default max-open-files must fit under it with room to spare.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))

d = tmpdir()


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def run(max_open, touch):
    args = ["sharded-file", "dir=" + d, "export=big", "size=1T"]
    if max_open:
        args.append("max-open-files=%d" % max_open)
    srv = Server(args)
    hs = [srv.connect() for _ in range(CONNS)]
    check(hs[0].get_size() == TiB, "1 TiB")
    base = fd_count(srv.proc.pid)
    limit = base + (max_open or 256) + 8      # + per-connection slack
    chunks = rng.sample(range(NCHUNKS), touch)
    written = {}
    peak = base
    for i in range(0, touch, 64):
        batch = chunks[i:i + 64]
        for j, n in enumerate(batch):
            off = n * CHUNK + rng.randrange(CHUNK - 512)
            # Never all zeros: zeros into an absent chunk store nothing.
            data = b"\x01" + rng.randbytes(rng.randint(0, 511))
            written[n] = (off, data)
            hs[j % CONNS].aio_pwrite(data, off)
        for h in hs:
            while h.aio_in_flight() > 0:
                h.poll(-1)
        peak = max(peak, fd_count(srv.proc.pid))
    check(peak <= limit, "open fds peaked at %d (base %d, limit %d)"
          % (peak, base, limit))
    # Flush: chunks whose descriptors were evicted dirty are reopened and
    # synced one at a time, still bounded.
    hs[0].flush()
    peak = max(peak, fd_count(srv.proc.pid))
    check(peak <= limit, "fds after flush: %d" % peak)
    # Read back in random order, in parallel.
    order = list(written)
    rng.shuffle(order)
    for i in range(0, len(order), 64):
        bufs = []
        for j, n in enumerate(order[i:i + 64]):
            off, data = written[n]
            b = nbd.Buffer(len(data))
            hs[j % CONNS].aio_pread(b, off)
            bufs.append((b, data, n))
        for h in hs:
            while h.aio_in_flight() > 0:
                h.poll(-1)
        for b, data, n in bufs:
            check(bytes(b.to_bytearray()) == data, "chunk %d reads back" % n)
        peak = max(peak, fd_count(srv.proc.pid))
    check(peak <= limit, "fds after reads: %d" % peak)
    # Extents over a large span answer from the map without opening
    # every chunk.
    ents = []
    hs[0].block_status(4 * 1024 * MiB - CHUNK, 0,
                       lambda m, o, e, err: ents.extend(e[0::2]) or 0)
    check(sum(ents) == 4 * 1024 * MiB - CHUNK, "extents of 4 GiB")
    files = [f for f in os.listdir(d) if f.endswith(".chunk")]
    for h in hs:
        h.shutdown()
    srv.stop()
    print("max-open-files=%s: %d chunks, fds base %d peak %d"
          % (max_open or "default", len(files), base, peak), flush=True)
    return written


w = run(MAX_OPEN, TOUCH)
check(len([f for f in os.listdir(d) if f.endswith(".chunk")]) == len(w),
      "one file per touched chunk")
# The default limit, with more chunks than it, after a restart; the data
# of the first run is still there.
w2 = run(None, TOUCH // 3)
srv = Server(["sharded-file", "dir=" + d, "export=big"])
h = srv.connect()
for n, (off, data) in list(w.items())[:200]:
    if n not in w2:
        check(h.pread(len(data), off) == data, "first run's chunk %d" % n)
h.shutdown()
srv.stop()
print("ok")
