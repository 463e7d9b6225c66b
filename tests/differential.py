"""The randomized differential test shared by the plugin tests: rounds of
seeded random commands issued to the plugin under test over several
connections at once (non-overlapping within a round, so they commute) and
applied to a reference (`nbdkit memory`); every read and the final image
must match."""

import hashlib
import os

import nbd

from shardkit_test import Server, check, fail

KiB = 1024
MiB = 1024 * KiB


def rand_len(rng):
    """1 byte to 8 MiB, log-uniform so that small and large both occur."""
    r = rng.random()
    if r < 0.05:
        return rng.randint(1, 16)
    if r < 0.08:
        return 8 * MiB
    return max(1, int(2 ** rng.uniform(0, 23)))


def rand_range(rng, size, chunk):
    length = min(rand_len(rng), size)
    nborders = (size - 1) // chunk
    if length > 1 and nborders > 0 and rng.random() < 0.5:
        # Straddle a chunk border.
        border = rng.randint(1, nborders) * chunk
        off = border - rng.randint(1, min(length - 1, border))
        length = min(length, size - off)
    else:
        off = rng.randrange(0, size - length + 1)
    return off, length


def overlaps(a, b):
    return a[0] < b[0] + b[1] and b[0] < a[0] + a[1]


def make_data(rng, length):
    kind = rng.random()
    if kind < 0.15:
        return bytes(length)                      # a write of zeros
    if kind < 0.25:
        # Mostly zeros with a little data: partially sparse chunks.
        b = bytearray(length)
        for _ in range(rng.randint(1, 4)):
            p = rng.randrange(length)
            b[p:p + 100] = rng.randbytes(min(100, length - p))
        return bytes(b)
    return rng.randbytes(length)


def new_stats():
    return dict.fromkeys(("write", "zero-write", "trim", "zero", "zero-nohole",
                          "zero-fast", "flush", "read", "cross"), 0)


def run_rounds(sfh, memh, size, chunk, rng, rounds, stats, output):
    """Issue ROUNDS rounds on the handles SFH (one per connection) and the
    reference MEMH.  OUTPUT() returns the server log for failure messages."""
    CONNS = len(sfh)
    for rnd in range(rounds):
        # A round: up to CONNS non-overlapping commands, one batch per
        # connection, all in flight together on sharded-file.  Commands of
        # a round commute, so the reference can apply them in any order.
        ops = []
        for c in range(CONNS):
            for _ in range(rng.randint(1, 3)):
                r = rng.random()
                rng_range = rand_range(rng, size, chunk)
                if any(overlaps(rng_range, o[2]) for o in ops):
                    continue
                if r < 0.40:
                    kind = "write"
                elif r < 0.52:
                    kind = "trim"
                elif r < 0.60:
                    kind = "zero"
                elif r < 0.66:
                    kind = "zero-nohole"
                elif r < 0.72:
                    kind = "zero-fast"
                elif r < 0.76:
                    kind = "flush"
                else:
                    kind = "read"
                ops.append([c, kind, rng_range, None, None])
        cookies = []
        for op in ops:
            c, kind, (off, length), _, _ = op
            h = sfh[c]
            stats[kind] += 1
            if off // chunk != (off + length - 1) // chunk:
                stats["cross"] += 1
            flags = nbd.CMD_FLAG_FUA if rng.random() < 0.1 else 0
            if kind == "write":
                data = make_data(rng, length)
                if not any(data[:1]) and data == bytes(length):
                    stats["zero-write"] += 1
                op[3] = data
                ck = h.aio_pwrite(data, off, flags=flags)
            elif kind == "trim":
                ck = h.aio_trim(length, off, flags=flags)
            elif kind == "zero":
                ck = h.aio_zero(length, off, flags=flags)
            elif kind == "zero-nohole":
                ck = h.aio_zero(length, off, flags=flags | nbd.CMD_FLAG_NO_HOLE)
            elif kind == "zero-fast":
                ck = h.aio_zero(length, off, flags=flags | nbd.CMD_FLAG_FAST_ZERO)
            elif kind == "flush":
                ck = h.aio_flush()
            else:
                buf = nbd.Buffer(length)
                op[4] = buf
                ck = h.aio_pread(buf, off)
            cookies.append((h, ck, op))
        for h in sfh:
            while h.aio_in_flight() > 0:
                h.poll(-1)
        for h, ck, op in cookies:
            c, kind, (off, length), data, buf = op
            try:
                h.aio_command_completed(ck)
                ok = True
            except nbd.Error as e:
                if kind == "zero-fast" and e.errno == "ENOTSUP":
                    ok = False              # allowed: nothing changed
                else:
                    fail("round %d: %s [%d,+%d) on conn %d failed: %s\n%s"
                         % (rnd, kind, off, length, c, e, output()[-3000:]))
            # Apply to the reference.
            if kind == "write":
                memh.pwrite(data, off)
            elif kind in ("trim", "zero", "zero-nohole") or \
                    (kind == "zero-fast" and ok):
                # The memory plugin trims to zeros too, but write the
                # zeros explicitly so the reference never depends on
                # its trim semantics.
                memh.zero(length, off, nbd.CMD_FLAG_NO_HOLE)
            elif kind == "read":
                got = bytes(buf.to_bytearray())
                want = memh.pread(length, off)
                if got != want:
                    i = next(i for i in range(length) if got[i] != want[i])
                    fail("round %d: read [%d,+%d) on conn %d differs at "
                         "offset %d (chunk %d)" % (rnd, off, length, c,
                                                   off + i, (off + i) // chunk))


def compare_image(sfh, memh, size, chunk):
    """Read the whole image through every connection in turn."""
    CONNS = len(sfh)
    # The whole image, through every connection in turn.
    pos = 0
    step = 8 * MiB
    i = 0
    while pos < size:
        n = min(step, size - pos)
        a = sfh[i % CONNS].pread(n, pos)
        b = memh.pread(n, pos)
        if a != b:
            j = next(j for j in range(n) if a[j] != b[j])
            fail("final image differs at offset %d (chunk %d)"
                 % (pos + j, (pos + j) // chunk))
        pos += n
        i += 1


def start_against_reference(args, size, conns):
    """Start the server under test with ARGS, CONNS connections to it, and
    the reference (`nbdkit memory`, never under valgrind: it is not
    ours).  Returns (server, reference server, handles, reference
    handle)."""
    sf = Server(args)
    mem = Server(["memory", "size=%d" % size], verbose=False,
                 nbdkit=os.environ.get("SHARDKIT_REAL_NBDKIT", "nbdkit"))
    sfh = [sf.connect() for _ in range(conns)]
    memh = mem.connect()
    check(sfh[0].get_size() == memh.get_size() == size, "sizes")
    return sf, mem, sfh, memh


def flush_and_stop(sf, sfh):
    """Flush and close every handle in SFH, then stop the server SF."""
    for h in sfh:
        h.flush()
        h.shutdown()
    sf.stop()


def restart_and_compare(sf, sfh, mem, memh, args, size, step=8 * MiB):
    """Flush and stop the server under test, start it again with ARGS,
    and check that it serves the reference's image; stop both.  Returns
    the image."""
    flush_and_stop(sf, sfh)
    sf = Server(args)
    h = sf.connect()
    want = hashlib.sha256()
    got = hashlib.sha256()
    final = bytearray()
    pos = 0
    while pos < size:
        n = min(step, size - pos)
        got.update(h.pread(n, pos))
        b = memh.pread(n, pos)
        want.update(b)
        final += b
        pos += n
    check(got.digest() == want.digest(), "image differs after a restart")
    h.shutdown()
    sf.stop()
    memh.shutdown()
    mem.stop(check_exit=False)
    return final
