"""Helpers for the tests of the volume tool, shardkit (tool/): run the
built binary, take its exit status, output and error lines, and a
fingerprint of a directory to prove that a refused command changed
nothing."""

import hashlib
import json
import os
import subprocess

from shardkit_test import BUILDDIR, SRCDIR, VALGRIND, check, fail, skip

TOOL = os.path.join(BUILDDIR, "tool", "shardkit")
if not os.access(TOOL, os.X_OK):
    skip("the volume tool is not built (%s missing)" % TOOL)

MiB = 1024 * 1024


class Result:
    def __init__(self, args, p):
        self.args = args
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            fail("shardkit %s: --json output does not parse (%s):\n%s"
                 % (" ".join(self.args), e, self.out))

    def __repr__(self):
        return "shardkit %s -> %d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(self.args), self.rc, self.out, self.err)


def run(*args, env=None, s3=None, timeout=300, valgrind=False):
    """Run shardkit ARGS.  S3: an s3_server.S3Server whose endpoint and
    keys (in the environment, as the credentials chain reads them) are
    given.  VALGRIND: under valgrind when SHARDKIT_VALGRIND is set, an
    error or a definite leak failing the test."""
    e = dict(os.environ)
    pre = []
    if s3 is not None:
        e["AWS_ACCESS_KEY_ID"] = s3.access_key
        e["AWS_SECRET_ACCESS_KEY"] = s3.secret_key
        e.pop("AWS_PROFILE", None)
        pre = ["--endpoint=" + s3.endpoint, "--url-style=path"]
    if env:
        e.update(env)
    a = pre + [str(x) for x in args]
    vg = []
    if valgrind and VALGRIND:
        vg = ["valgrind", "--quiet", "--leak-check=full",
              "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
              "--error-exitcode=119",
              "--suppressions=" + os.path.join(SRCDIR, "valgrind.supp")]
    p = subprocess.run(vg + [TOOL] + a, env=e, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    r = Result(a, p)
    if vg:
        check(r.rc != 119, "valgrind found errors: %r" % r)
    return r


def ok(*args, **kw):
    """Run shardkit, which must exit 0."""
    r = run(*args, **kw)
    check(r.rc == 0, "expected success: %r" % r)
    return r


def refused(*args, rc=2, want=None, **kw):
    """Run shardkit, which must exit RC with exactly one line on stderr
    (containing WANT) and nothing on stdout."""
    r = run(*args, **kw)
    check(r.rc == rc, "expected exit %d: %r" % (rc, r))
    lines = r.err.splitlines()
    check(len(lines) == 1 and lines[0].startswith("shardkit: "),
          "expected one error line: %r" % r)
    if want is not None:
        check(want in lines[0], "expected %r in the error: %r" % (want, r))
    check(r.out == "", "expected no output: %r" % r)
    return r


def fingerprint(d):
    """Names, sizes and contents of every file in D (not sockets)."""
    fp = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                fp[name] = hashlib.sha256(f.read()).hexdigest()
        elif os.path.isdir(p):
            fp[name] = "dir"
    return fp
