"""shardkit delete and resize respect the volume's lock as the plugin
takes it (flock on NAME.meta): while nbdkit sharded-file serves the
volume read-write, or read-only, both refuse with one line and change
nothing, and info names the server's pid; once nbdkit has stopped both
work.  While delete or resize hold the lock, a server cannot open the
volume (the tool holds it exclusively, as a writer)."""

import os

from shardkit_test import Server, check, tmpdir
from tool_test import MiB, fingerprint, ok, refused

d = tmpdir()
ok("create", d, "vm", "8M", "--chunk-size=1M")

for readonly in (False, True):
    srv = Server(["sharded-file", "dir=" + d, "export=vm"],
                 readonly=readonly)
    h = srv.connect()           # the volume is opened (and locked) here
    if not readonly:
        h.pwrite(b"D" * MiB, 0)
        h.flush()
    before = fingerprint(d)
    j = ok("info", d, "vm", "--json").json()
    check(j["in_use"] is True, "in use while served: %s" % j)
    check("pid %d" % srv.proc.pid in j["holder"],
          "info names nbdkit's pid %d: %s" % (srv.proc.pid, j["holder"]))
    check(("read-only" if readonly else "read-write") in j["holder"],
          "how it is held: %s" % j["holder"])
    for args in (("delete", d, "vm"), ("resize", d, "vm", "16M"),
                 ("resize", d, "vm", "1M", "--force")):
        r = refused(*args, want="in use")
        check("pid %d" % srv.proc.pid in r.err,
              "the refusal names nbdkit's pid: %r" % r)
    check(fingerprint(d) == before, "refusals changed nothing")
    check(h.pread(MiB, 0) == b"D" * MiB, "the served data is intact")
    h.shutdown()
    srv.stop()

j = ok("info", d, "vm", "--json").json()
check(j["in_use"] is False and j["holder"] is None, "free after stop: %s" % j)
ok("resize", d, "vm", "16M")
check(ok("info", d, "vm", "--json").json()["size"] == 16 * MiB, "grown")
ok("delete", d, "vm")
check(not any(f.startswith("vm.") for f in os.listdir(d)), "deleted")
