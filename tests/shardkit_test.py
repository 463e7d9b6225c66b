"""Helpers for shardkit's functional tests.

Every test starts its own nbdkit on a private Unix socket in a private
temporary directory and stops it, also when the test fails.  Tests exit
with 77 to be counted as skipped when a tool they need is missing.
"""

import atexit
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import nbd

SKIP = 77

BUILDDIR = os.environ.get("top_builddir",
                          os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NBDKIT = os.environ.get("NBDKIT", os.path.join(BUILDDIR, "nbdkit"))
VALGRIND = bool(os.environ.get("SHARDKIT_VALGRIND"))

_cleanups = []


def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:          # keep cleaning up the rest
            print("cleanup failed: %r" % e, file=sys.stderr)


atexit.register(_run_cleanups)
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, lambda s, f: sys.exit(128 + s))


def on_exit(fn):
    """Run FN when the test exits, however it exits (LIFO)."""
    _cleanups.append(fn)


def skip(why):
    print("SKIP:", why)
    sys.exit(SKIP)


def need_tool(path_or_name, package):
    """Skip unless a program is available; return its path."""
    p = path_or_name if os.path.isabs(path_or_name or "") else \
        shutil.which(path_or_name or "")
    if not p or not os.access(p, os.X_OK):
        skip("%s not found (apt-get install %s)" % (path_or_name, package))
    return p


def fault_injector():
    """The LD_PRELOAD storage fault injector (tests/fault-inject.c): return
    (path of fault-inject.so, a private directory whose files switch the
    faults on).  Skips the test under valgrind or when it is not built."""
    if VALGRIND:
        skip("LD_PRELOAD fault injection is not combined with valgrind")
    builddir = os.environ.get("builddir",
                              os.path.dirname(os.path.abspath(__file__)))
    shim = os.path.join(builddir, ".libs", "fault-inject.so")
    if not os.path.exists(shim):
        skip("fault-inject.so not built")
    return shim, tmpdir("shardkit-faults-")


def tmpdir(prefix="shardkit-test-"):
    d = tempfile.mkdtemp(prefix=prefix)
    on_exit(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def seed_from_env(default=None):
    """The random seed: $SEED if set, else DEFAULT, else random.  Printed
    so that a failure can be replayed with SEED=n."""
    s = os.environ.get("SEED")
    seed = int(s) if s else (default if default is not None
                             else random.SystemRandom().randrange(1 << 32))
    print("seed:", seed, "(replay with SEED=%d)" % seed, flush=True)
    return seed


def fail(msg):
    print("FAIL:", msg, file=sys.stderr, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Server:
    """An nbdkit process serving on a private Unix socket.

    args: everything after "nbdkit -f -U SOCK", e.g.
          ["--filter=chunk-cache", "sharded-file", "dir=/x", "export=a"].
    """

    def __init__(self, args, readonly=False, verbose=True, env=None,
                 wait=True, tmp=None, nbdkit=None):
        self.dir = tmp or tmpdir("shardkit-srv-")
        self.sock = os.path.join(self.dir, "nbd.sock")
        self.log = os.path.join(self.dir, "nbdkit.log")
        cmd = [nbdkit or NBDKIT, "-f", "-U", self.sock]
        if readonly:
            cmd.append("-r")
        if verbose:
            cmd.append("-v")
        cmd += list(args)
        self.cmd = cmd
        self.logf = open(self.log, "w+b")
        e = dict(os.environ)
        if env:
            e.update(env)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf,
                                     env=e)
        on_exit(self.kill)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=60 if VALGRIND else 20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nbdkit exited with %d at start-up:\n%s"
                                   % (self.proc.returncode, self.output()))
            if os.path.exists(self.sock):
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(self.sock)
                    return
                except OSError:
                    pass
                finally:
                    s.close()
            time.sleep(0.02)
        raise RuntimeError("nbdkit did not start in %ds:\n%s"
                           % (timeout, self.output()))

    def uri(self, export=""):
        return "nbd+unix:///%s?socket=%s" % (export, self.sock)

    def connect(self, export="", meta_contexts=("base:allocation",)):
        h = nbd.NBD()
        h.set_export_name(export)
        for m in meta_contexts:
            h.add_meta_context(m)
        h.connect_unix(self.sock)
        return h

    def output(self):
        self.logf.flush()
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=60 if VALGRIND else 20, check_exit=True):
        """Stop cleanly with SIGTERM; return nbdkit's exit status.  Under
        valgrind a non-zero status (an error or a leak) fails the test."""
        if VALGRIND:
            self.wait_connections_closed()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check_exit:
                    fail("nbdkit did not exit on SIGTERM:\n" + self.output())
        rc = self.proc.returncode
        if check_exit and VALGRIND and rc != 0:
            fail("nbdkit exited %d under valgrind:\n%s" % (rc, self.output()))
        return rc

    def wait_connections_closed(self, timeout=5):
        """Wait until every connection that opened the plugin has closed it.
        nbdkit 1.32 does not wait for connection threads on SIGTERM: one
        still between .finalize and .close when the main thread exits leaks
        its context (valgrind: "definitely lost" in nbdkit, with the
        plugin's handle).  Clients that have just disconnected may still be
        there, so let them finish.  Needs -v (the debug lines)."""
        pat = re.compile(r"^nbdkit: [^\s\[]+\[(\d+)\]: debug: [^:]+: "
                         r"(open returned handle|close)\b", re.M)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            opened = {}
            for conn, what in pat.findall(self.output()):
                opened[conn] = opened.get(conn, 0) + \
                    (1 if what.startswith("open") else -1)
            if all(v <= 0 for v in opened.values()):
                return
            time.sleep(0.05)

    def kill(self):
        """SIGKILL (a crash).  Also the cleanup of last resort."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        try:
            self.logf.close()
        except Exception:
            pass


def start_fails(args, readonly=False, timeout=60 if VALGRIND else 20):
    """Run nbdkit with ARGS and expect it to refuse to start; return its
    output.  Fails the test if it starts serving."""
    d = tmpdir("shardkit-srv-")
    sock = os.path.join(d, "nbd.sock")
    cmd = [NBDKIT, "-f", "-U", sock] + (["-r"] if readonly else []) + list(args)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        fail("nbdkit started although it should have refused: %s" % cmd)
    if p.returncode == 0:
        fail("nbdkit exited 0 although it should have refused: %s" % cmd)
    return out.decode("utf-8", "replace")


def expect_error(fn, what):
    """Call FN, which must fail with an NBD error; return the nbd.Error.
    WHAT names the call in the failure message."""
    try:
        fn()
    except nbd.Error as e:
        return e
    fail(what + ": succeeded, expected an error")


def wait_for_output(srv, text, timeout=60 if VALGRIND else 10):
    """Wait until TEXT is in SRV's log, at most TIMEOUT seconds; return
    whether it is."""
    deadline = time.monotonic() + timeout
    while text not in srv.output():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


# retry-backoff's tests.

SRCDIR = os.environ.get("srcdir", os.path.dirname(os.path.abspath(__file__)))
# An nbdkit sh plugin that fails on demand (see the script).
FLAKY = os.path.join(SRCDIR, "test-retry-backoff-flaky.sh")


def flaky_server(params, disk, state=None):
    """nbdkit --filter=retry-backoff sh FLAKY PARAMS..., its state in the
    directory STATE (a new one by default), which gets DISK (bytes) as the
    export's data.  Returns (the Server, the state directory)."""
    d = state or tmpdir("shardkit-flaky-")
    with open(os.path.join(d, "disk"), "wb") as f:
        f.write(disk)
    srv = Server(["--filter=retry-backoff", "sh", FLAKY] + list(params),
                 env={"FLAKY_DIR": d})
    return srv, d


def put_state(d, name, value="", on=True):
    """Write VALUE to the file NAME in D, or with on=False remove it: how
    tests switch the faults of the fault injectors that keep their state
    in a directory (fault_injector(): enospc-pwrite, fail-fdatasync, ...;
    test-retry-backoff-flaky.sh: fail-pread, bad-h1, errno, ...;
    retry-backoff-faults.c).  put_state(d, "log", on=False) empties a
    call log."""
    p = os.path.join(d, name)
    if on:
        with open(p, "w") as f:
            f.write(str(value))
    elif os.path.exists(p):
        os.unlink(p)


def logged_calls(d, name="log"):
    """The calls such a fault injector logged in D/NAME, one line each,
    split into words (["pwrite", "h1", "512", "0", "fua", ...]); [] before
    the first."""
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [l.split() for l in f]


def stop_after_summary(srv, h):
    """Disconnect H and stop SRV once retry-backoff has logged the
    connection's summary (logged at close, which SIGTERM could pre-empt)."""
    h.shutdown()
    wait_for_output(srv, "connection summary:")
    srv.stop()


def retry_summaries(out):
    """retry-backoff's connection summaries in the log OUT, one tuple per
    connection: (requests retried, retries, recovered, gave up, reopens,
    failed reopens)."""
    return [tuple(int(x) for x in m) for m in re.findall(
        r"connection summary: (\d+) requests retried, (\d+) retries, "
        r"(\d+) recovered, (\d+) gave up, (\d+) reopens \((\d+) failed\)",
        out)]


def retry_summary(out):
    """The one connection summary in the log OUT (see retry_summaries);
    fails the test if there is none."""
    s = retry_summaries(out)
    check(s, "no connection summary in the log")
    return s[-1]


def allocation(h, size, offset=0):
    """The base:allocation extents of [OFFSET, SIZE) as a list of
    (offset, length, flags), asking block_status until the range is
    covered (a server may answer for less than was asked)."""
    out = []
    ext = []

    def cb(meta, off, ents, err):
        if meta == "base:allocation":
            ext.extend(zip(ents[0::2], ents[1::2]))
    pos = offset
    while pos < size:
        ext.clear()
        h.block_status(size - pos, pos, cb)
        if not ext:
            fail("block_status at %d answered nothing" % pos)
        for length, flags in ext:
            out.append((pos, length, flags))
            pos += length
    return out
