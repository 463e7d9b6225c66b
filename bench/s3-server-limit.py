#!/usr/bin/python3
"""The S3 server's own limit: what any S3 client can get from it here.

8 parallel clients, each with one kept-alive HTTP connection, PUT 8
objects of 4 MiB each (all clients at once), then GET them back; MiB/s of
the PUT phase and of the GET phase.  Requests are signed with SigV4
(botocore's signer) and carry their payload SHA-256, as s3-object's do;
the bodies' digests are computed before the clock starts so that the
figure is the server's, not the client's.  GET bodies are compared with
what was written.

With --client-digests the clients instead compute each body's SHA-256
(OpenSSL, through hashlib) inside the timed PUT phase and sign it, as
every chunk PUT of s3-object must: the most any client that sends the
digest the server verifies can get on the same cores, with no other
work (no NBD traffic, no copies of its own).  --client-md5 adds
Content-MD5, as s3-object's chunk PUTs carried before issue 13.

Usage:
  bench/s3-server-limit.py [--rounds N] [--servers ceph,s3rver]
      starts each server itself (see tests/s3_server.py) and alternates
      between them, N rounds (default 3);
  bench/s3-server-limit.py --endpoint URL --bucket B --access-key K \\
      --secret-key S [--rounds N]
      measures a server that is already running (for bench/s3-object.sh).

Needs python3-boto3 and, for the servers it starts, Debian's ceph-mon,
ceph-osd, radosgw, ceph-common and tests/s3rver (npm ci).  Takes about
half a minute.  Stores 256 MiB per round (deleted after each round).
"""

import argparse
import base64
import hashlib
import http.client
import os
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
import s3_server  # noqa: E402

MiB = 1024 * 1024
CLIENTS = 8
OBJECTS = 8
OBJECT_SIZE = 4 * MiB


class External(s3_server.S3Server):
    """A server started by someone else."""

    def __init__(self, endpoint, bucket, access_key, secret_key):
        u = urlsplit(endpoint)
        if u.scheme != "http":
            sys.exit("only http:// endpoints (loopback benchmarks)")
        self.host, self.port = u.hostname, u.port or 80
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.name = endpoint

    @property
    def endpoint(self):
        return "http://%s:%d" % (self.host, self.port)

    def cpu_pids(self):
        return []


def server_cpu(pids):
    t = 0.0
    for p in pids:
        try:
            t += s3_server.proc_cpu_seconds(p)
        except OSError:
            pass
    return t


def one_round(srv, bodies, digests, tag, client_digests=False):
    """Returns (put MiB/s, get MiB/s, server CPU s per GiB moved)."""
    host = getattr(srv, "host", "127.0.0.1")
    errors = []
    start = threading.Barrier(CLIENTS + 1)
    put_done = threading.Barrier(CLIENTS + 1)
    get_start = threading.Barrier(CLIENTS + 1)
    get_done = threading.Barrier(CLIENTS + 1)

    def client(t):
        conn = http.client.HTTPConnection(host, srv.port, timeout=120)
        keys = ["limit-%s/%d/%d" % (tag, t, i) for i in range(OBJECTS)]
        try:
            start.wait()
            for i, k in enumerate(keys):
                b = (t + i) % len(bodies)
                if client_digests:
                    headers = {}
                    if client_digests == "md5":
                        md5 = hashlib.md5(bodies[b]).digest()
                        headers["Content-MD5"] = base64.b64encode(md5).decode()
                    st, _, body = srv.signed_request(
                        conn, "PUT", k, bodies[b],
                        payload_sha256=hashlib.sha256(bodies[b]).hexdigest(),
                        headers=headers)
                else:
                    st, _, body = srv.signed_request(
                        conn, "PUT", k, bodies[b], payload_sha256=digests[b])
                if st != 200:
                    raise RuntimeError("PUT %s: %d %r" % (k, st, body[:200]))
            put_done.wait()
            get_start.wait()
            for i, k in enumerate(keys):
                b = (t + i) % len(bodies)
                st, _, body = srv.signed_request(conn, "GET", k)
                if st != 200 or body != bodies[b]:
                    raise RuntimeError("GET %s: %d, %d bytes, %s"
                                       % (k, st, len(body),
                                          "same" if body == bodies[b]
                                          else "DIFFERENT"))
            get_done.wait()
        except threading.BrokenBarrierError:
            pass
        except Exception as e:
            errors.append(e)
            for b in (start, put_done, get_start, get_done):
                b.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(t,))
               for t in range(CLIENTS)]
    for th in threads:
        th.start()
    pids = srv.cpu_pids()
    try:
        cpu0 = server_cpu(pids)
        start.wait()
        t0 = time.monotonic()
        put_done.wait()
        t1 = time.monotonic()
        get_start.wait()
        t2 = time.monotonic()
        get_done.wait()
        t3 = time.monotonic()
        cpu1 = server_cpu(pids)
    except threading.BrokenBarrierError:
        pass
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    total = CLIENTS * OBJECTS * OBJECT_SIZE
    srv.delete_prefix("limit-%s/" % tag)
    cpu_per_gib = (cpu1 - cpu0) / (2 * total / (1024 * MiB)) if pids else None
    return total / MiB / (t1 - t0), total / MiB / (t3 - t2), cpu_per_gib


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--servers", default="ceph,s3rver")
    ap.add_argument("--endpoint")
    ap.add_argument("--bucket", default="shardkit")
    ap.add_argument("--access-key")
    ap.add_argument("--secret-key")
    ap.add_argument("--name", help="the server's name in the output")
    ap.add_argument("--client-digests", action="store_true",
                    help="compute each PUT body's SHA-256 in the timed phase")
    ap.add_argument("--client-md5", action="store_true",
                    help="with --client-digests: Content-MD5 too")
    ap.add_argument("--no-warmup", action="store_true",
                    help="measure from the first request (a fresh Ceph "
                    "gateway is slow for its first few hundred MiB)")
    a = ap.parse_args()
    # What the clients pay in the timed phase: nothing, "sha" or "md5".
    cd = ("md5" if a.client_md5 else "sha") if a.client_digests else None

    servers = []
    if a.endpoint:
        servers.append(External(a.endpoint, a.bucket, a.access_key,
                                a.secret_key))
        if a.name:
            servers[-1].name = a.name
    else:
        for name in a.servers.split(","):
            if name == "ceph":
                s = s3_server.CephRGW()
                s.name = "Ceph RGW 16.2 (memstore)"
                s.cpu_pids = lambda s=s: [s.gw.pid, s.osd.pid]
            elif name == "s3rver":
                s = s3_server.S3rver()
                s.name = "s3rver 3.7.1"
                s.cpu_pids = lambda s=s: [s.proc.pid]
            else:
                sys.exit("unknown server %s" % name)
            print("%s ready in %.2f s at %s" % (s.name, s.start_seconds,
                                                s.endpoint), flush=True)
            servers.append(s)

    bodies = [os.urandom(OBJECT_SIZE) for _ in range(OBJECTS)]
    digests = [hashlib.sha256(b).hexdigest() for b in bodies]
    print("%d clients x %d objects x %d MiB, one kept-alive connection "
          "each; %d rounds after %s, servers alternating; %s"
          % (CLIENTS, OBJECTS, OBJECT_SIZE // MiB, a.rounds,
             "no warm-up" if a.no_warmup else "one warm-up round",
             ("PUT SHA-256%s computed by the clients in the timed phase"
              % (" and Content-MD5" if cd == "md5" else ""))
             if cd else "PUT digests computed in advance"),
          flush=True)
    results = {s.name: [] for s in servers}
    if not a.no_warmup:
        for s in servers:
            one_round(s, bodies, digests, "warmup", cd)
    for r in range(a.rounds):
        for s in servers:
            put, get, cpu = one_round(s, bodies, digests, "r%d" % r,
                                      cd)
            results[s.name].append((put, get, cpu))
            print("  round %d  %-26s PUT %7.1f MiB/s  GET %7.1f MiB/s%s"
                  % (r + 1, s.name, put, get,
                     "  (server %.2f CPU s/GiB)" % cpu if cpu is not None
                     else ""), flush=True)
    print("median over %d rounds:" % a.rounds)
    for s in servers:
        rs = results[s.name]
        put = statistics.median(x[0] for x in rs)
        get = statistics.median(x[1] for x in rs)
        cpus = [x[2] for x in rs if x[2] is not None]
        print("  %-26s PUT %7.1f MiB/s  GET %7.1f MiB/s%s"
              % (s.name, put, get,
                 "  server CPU %.2f s/GiB moved" % statistics.median(cpus)
                 if cpus else ""))
        # Machine-readable line for scripts that assemble a report.
        print("RESULT server=%s put_mibs=%.1f get_mibs=%.1f"
              % (s.name.split()[0].lower(), put, get))


if __name__ == "__main__":
    main()
