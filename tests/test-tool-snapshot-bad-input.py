"""Bad input to shardkit snapshot and clone, and to volumes in snapshot
chains: each mistake gives exactly one line on stderr, nothing on
stdout, exit status 2, and leaves the directory as it was: unknown
volume or snapshot, a name already taken, cloning a volume that is not
a snapshot, snapshotting a snapshot, deleting a volume that others name
as base or data (they are named), resizing a snapshot or a volume that
reads through to a base (once flattened, it resizes), a snapshot of a
volume served read-write (the holder is named).  Chains
edited by hand: a cycle, a missing base, a base whose uuid is not the
one its clone was made from; the tool and the plugin refuse each with
one line; so is a chain of more than 16 bases, and metadata of a newer
format version (named as such, not as damage).  A clone whose base was
removed by hand is refused by check but can be deleted."""

import os

from shardkit_test import Server, check, start_fails, tmpdir
from tool_test import MiB, fingerprint, ok, refused

d = tmpdir()
ok("create", d, "vm", "4M", "--chunk-size=1M")
srv = Server(["sharded-file", "dir=" + d, "export=vm"])
h = srv.connect()
h.pwrite(b"v" * MiB, 0)
h.flush()
h.shutdown()
srv.stop()
ok("snapshot", d, "vm", "s1")
ok("clone", d, "s1", "c1")
before = fingerprint(d)

cases = [
    (("snapshot", d, "nosuch", "s9"), "does not exist"),
    (("snapshot", d, "vm", "s1"), "already exists"),
    (("snapshot", d, "vm", "c1"), "already exists"),
    (("snapshot", d, "vm", "vm"), "a name of its own"),
    (("snapshot", d, "s1", "s9"), "is a snapshot already"),
    (("snapshot", d, "vm", "a/b"), "may contain only"),
    (("snapshot", d, "vm", "x@1"), "may contain only"),
    (("snapshot", d, "vm"), "usage: shardkit snapshot"),
    (("clone", d, "nosuch", "c9"), "does not exist"),
    (("clone", d, "vm", "c9"), "is not a snapshot"),
    (("clone", d, "s1", "c1"), "already exists"),
    (("clone", d, "s1", "vm"), "already exists"),
    (("clone", d, "s1", ".x"), "must not start with '.'"),
    (("delete", d, "s1"), "needed by"),
    (("delete", d, "vm"), "needed by s1 (data)"),
    (("resize", d, "c1", "8M"), "reads through to a base"),
    (("resize", d, "vm", "8M"), "flatten it first"),
    (("resize", d, "s1", "8M"), "is a snapshot"),
]
for args, want in cases:
    refused(*args, want=want)
    check(fingerprint(d) == before, "%r changed the directory" % (args,))
r = refused("delete", d, "s1")
check("vm (base)" in r.err and "c1 (base)" in r.err,
      "delete names every dependent: %r" % r)

# Snapshots only while the volume is not served read-write.
srv = Server(["sharded-file", "dir=" + d, "export=c1"])
h = srv.connect()
r = refused("snapshot", d, "c1", "s9", want="in use")
check("pid %d" % srv.proc.pid in r.err, "names the holder: %r" % r)
h.shutdown()
srv.stop()
check(fingerprint(d) == before, "refused snapshot changed nothing")


def write_meta(name, **keys):
    """A hand-written NAME.meta without a checksum line (as before the
    checksum existed, which is still read)."""
    text = ("format=shardkit-volume\nversion=2\nsize=4194304\n"
            "chunk-size=1048576\nuuid=%s\ncreated=2026-12-01T00:00:00Z\n"
            % keys.pop("uuid"))
    for k, v in keys.items():
        text += "%s=%s\n" % (k.replace("_", "-"), v)
    with open(os.path.join(d, name + ".meta"), "w") as f:
        f.write(text)


U1 = "11111111-1111-4111-8111-111111111111"
U2 = "22222222-2222-4222-8222-222222222222"
U3 = "33333333-3333-4333-8333-333333333333"
# A cycle: snapshot y's base is x, x's base is y.
write_meta("x", uuid=U1, read_only=1, data="vm", base="y", base_uuid=U2)
write_meta("y", uuid=U2, read_only=1, data="vm", base="x", base_uuid=U1)
# A missing link.
write_meta("lost", uuid=U3, base="gone", base_uuid=U1)
# A base whose uuid is not the one expected.
write_meta("wrong", uuid=U3, generation=0 or 1, base="s1", base_uuid=U1)
before = fingerprint(d)

for args, want in [
        (("clone", d, "y", "c9"), "cycle"),
        (("snapshot", d, "lost", "s9"), "missing link"),
        (("snapshot", d, "wrong", "s9"), "not the " + U1),
        (("clone", d, "x", "c9"), "cycle")]:
    refused(*args, want=want)
    check(fingerprint(d) == before, "%r changed the directory" % (args,))

for name, want in (("y", "cycle"), ("lost", "missing link"),
                   ("wrong", "not the " + U1)):
    out = start_fails(["sharded-file", "dir=" + d, "export=" + name])
    check(want in out, "nbdkit refuses %s: %s" % (name, out))
    check(fingerprint(d) == before, "refused start changed nothing")

# A chain longer than 16: l0 -> l1 -> ... -> l17.
for i in range(18):
    keys = dict(uuid="%08d-0000-4000-8000-000000000000" % (100 + i),
                read_only=1, data="vm")
    if i < 17:
        keys.update(base="l%d" % (i + 1),
                    base_uuid="%08d-0000-4000-8000-000000000000" % (101 + i))
    write_meta("l%d" % i, **keys)
before = fingerprint(d)
refused("clone", d, "l0", "c9", want="more than 16 bases")
refused("clone", d, "l1", "c9", want="more than 16 bases")
check(fingerprint(d) == before, "nothing changed")
ok("clone", d, "l2", "c9")          # 16 bases: the limit
refused("snapshot", d, "c9", "s9", want="more than 16 bases")
ok("delete", d, "c9")
# A volume written by a newer shardkit: named as such, and a delete
# elsewhere refused (it might depend on the volume).
with open(os.path.join(d, "future.meta"), "w") as f:
    f.write("format=shardkit-volume\nversion=4\nsize=4194304\n"
            "chunk-size=1048576\nuuid=%s\ncreated=2026-12-01T00:00:00Z\n"
            % U1)
ok("create", d, "p1", "1M")
before = fingerprint(d)
refused("delete", d, "p1", want="cannot tell whether volume 'future'")
r = refused("info", d, "future", want="of a newer format")
check("version 4 is not supported" in r.err, "names the version: %r" % r)
check(fingerprint(d) == before, "nothing changed")
out = start_fails(["sharded-file", "dir=" + d, "export=l0"])
check("more than 16 bases" in out, "nbdkit refuses a long chain: %s" % out)

# A volume whose chain is broken cannot be served, but it can be
# deleted (its own chunks and metadata; the rest stays).
os.unlink(os.path.join(d, "future.meta"))
ok("clone", d, "s1", "c2")
srv = Server(["sharded-file", "dir=" + d, "export=c2"])
h = srv.connect()
h.pwrite(b"2" * 4096, 0)
h.flush()
h.shutdown()
srv.stop()
os.rename(os.path.join(d, "s1.meta"), os.path.join(d, "s1.away"))
refused("check", d, "c2", want="missing link")
r = ok("delete", d, "c2")
check("1 chunk removed" in r.out, "the broken clone's chunk went: %r" % r)
check(not any(f.startswith("c2.") for f in os.listdir(d)),
      "nothing of c2 is left: %s" % os.listdir(d))
os.rename(os.path.join(d, "s1.away"), os.path.join(d, "s1.meta"))
# Flattened, a volume is resized like any other.
ok("flatten", d, "c1")
ok("resize", d, "c1", "8M")
check(ok("info", d, "c1", "--json").json()["size"] == 8 * MiB, "resized")
print("ok")
