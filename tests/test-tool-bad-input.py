"""Bad input to shardkit: each mistake gives exactly one line on
stderr, nothing on stdout, exit status 2, and leaves the directory as
it was: unknown volume, bad names, bad sizes, a taken name, unknown
commands and options, options a command does not take, a WHERE that
does not exist or is not a directory, wrong numbers of arguments."""

import os

from shardkit_test import check, tmpdir
from tool_test import fingerprint, ok, refused, run

d = tmpdir()
ok("create", d, "vm", "4M", "--chunk-size=64K")
with open(os.path.join(d, "vm.3.chunk"), "wb") as f:
    f.write(b"data")
before = fingerprint(d)

cases = [
    (("info", d, "nosuch"), "does not exist"),
    (("check", d, "nosuch"), "does not exist"),
    (("delete", d, "nosuch"), "does not exist"),
    (("resize", d, "nosuch", "8M"), "does not exist"),
    (("du", d, "nosuch"), "does not exist"),
    (("create", d, ".hidden", "1M"), "must not start with '.'"),
    (("create", d, "a/b", "1M"), "may contain only"),
    (("info", d, "../vm"), "must not start with '.'"),
    (("create", d, "x" * 201, "1M"), "longer than 200"),
    (("create", d, "new", "12Q"), "not a size"),
    (("create", d, "new", "0"), "cannot be empty"),
    (("create", d, "new", "-5"), "unknown option"),
    (("create", d, "new", "1M", "--chunk-size=3000"), "power of two"),
    (("create", d, "new", "1M", "--chunk-size=2G"), "power of two"),
    (("create", d, "new", "16E"), "too large"),
    (("create", d, "new", "9E"), "larger than the largest volume"),
    (("create", d, "vm", "4M"), "already exists"),
    (("resize", d, "vm", "nonsense"), "not a size"),
    (("resize", d, "vm", "1K"), "--force"),
    (("frobnicate", d), "unknown command"),
    ((), "no command"),
    (("list",), "no WHERE"),
    (("list", d, "--frob"), "unknown option"),
    (("list", d, "extra"), "usage: shardkit list"),
    (("info", d), "usage: shardkit info"),
    (("create", d, "new"), "usage: shardkit create"),
    (("create", d, "new", "1M", "--json"), "does not take --json"),
    (("list", d, "--force"), "does not take --force"),
    (("info", d, "vm", "--chunk-size=64K"), "does not take --chunk-size"),
    (("check", d, "vm", "--jobs=0"), "--jobs=0"),
    (("check", d, "vm", "--jobs"), "needs a value"),
    (("list", "/nonexistent-dir"), "No such file"),
    (("list", os.path.join(d, "vm.meta")), "Not a directory"),
    (("list", "s3://"), "no bucket"),
    (("list", "s3://b", "--endpoint=ftp://x"), "--endpoint"),
    (("list", "s3://b", "--url-style=odd"), "--url-style"),
]
for args, want in cases:
    refused(*args, want=want)
    check(fingerprint(d) == before, "%s changed the directory" % (args,))

# Help and version are not errors.
r = ok("--help")
check("Usage: shardkit" in r.out and "create" in r.out, r.out)
r = ok("--version")
check(r.out.startswith("shardkit "), r.out)
# A volume named like an option, after "--".
ok("create", d, "--", "-dash", "1M")
check(os.path.exists(os.path.join(d, "-dash.meta")), "-dash created")
