#!/usr/bin/python3
"""Helpers of bench/snapshot-clone.sh (not a benchmark by itself).

  open-time REPS SOCK CMD...     start CMD (an nbdkit serving on the Unix
                                 socket SOCK, in the foreground) REPS
                                 times; each time, the seconds from the
                                 start to the first 4 KiB read at offset
                                 0 answered; prints the median and every
                                 sample
  rewrite-half URI CHUNK_SIZE    write random bytes over every other
                                 chunk (0, 2, 4, ...) of the NBD export
                                 at URI, then flush
  s3-put-chunks PREFIX VOLUME NCHUNKS STEP BYTES
                                 PUT PREFIX/VOLUME.N.chunk for N = 0,
                                 STEP, 2*STEP, ... below NCHUNKS, BYTES
                                 bytes each, 16 at a time
  s3-count TOOL ARGS...          run TOOL --endpoint=PROXY --url-style=path
                                 ARGS, PROXY a recording proxy
                                 (tests/s3_fault_proxy.py) in front of
                                 $S3_ENDPOINT; prints what went through it
                                 (and, with VERBOSE=1, every request on
                                 stderr)

The S3 ones read S3_ENDPOINT, S3_BUCKET, S3_REGION, S3_ACCESS_KEY and
S3_SECRET_KEY (set by bench/s3-run-server.py).
"""

import collections
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def open_time(reps, sock, cmd):
    import nbd
    samples = []
    for _ in range(reps):
        if os.path.exists(sock):
            os.unlink(sock)
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            while True:
                if p.poll() is not None:
                    sys.exit("%s exited at start-up" % cmd[0])
                if time.monotonic() - t0 > 60:
                    sys.exit("%s did not serve in 60 s" % cmd[0])
                if not os.path.exists(sock):
                    time.sleep(0.001)
                    continue
                h = nbd.NBD()
                try:
                    h.connect_unix(sock)
                except nbd.Error:
                    del h
                    time.sleep(0.001)
                    continue
                h.pread(4096, 0)
                samples.append(time.monotonic() - t0)
                h.shutdown()
                break
        finally:
            stop(p)
    print("%.4f %s" % (statistics.median(samples),
                       " ".join("%.4f" % s for s in samples)))


def rewrite_half(uri, chunk_size):
    import nbd
    h = nbd.NBD()
    h.connect_uri(uri)
    size = h.get_size()
    for off in range(0, size, 2 * chunk_size):
        h.pwrite(os.urandom(min(chunk_size, size - off)), off)
    h.flush()
    h.shutdown()


def client():
    import boto3
    from botocore.config import Config
    return boto3.session.Session().client(
        "s3", endpoint_url=os.environ["S3_ENDPOINT"],
        aws_access_key_id=os.environ["S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["S3_SECRET_KEY"],
        region_name=os.environ["S3_REGION"],
        config=Config(s3={"addressing_style": "path"},
                      max_pool_connections=16))


def put_chunks(prefix, volume, nchunks, step, nbytes):
    from concurrent.futures import ThreadPoolExecutor
    s3 = client()
    bucket = os.environ["S3_BUCKET"]
    body = b"\x01" * nbytes

    def put(n):
        s3.put_object(Bucket=bucket, Key="%s/%s.%d.chunk" % (prefix, volume, n),
                      Body=body)
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(put, range(0, nchunks, step)))


def count(tool_args):
    from s3_fault_proxy import FaultProxy

    class Counting(FaultProxy):
        """Also counts the body bytes of every answer it sends on."""
        down = collections.Counter()

        def _send(self, c, resp, method, rec):
            if resp.body and method != "HEAD":
                with self.lock:
                    self.down[rec.key.endswith(".chunk")] += len(resp.body)
            super()._send(c, resp, method, rec)

    port = urllib.parse.urlsplit(os.environ["S3_ENDPOINT"]).port
    proxy = Counting(port, bucket=os.environ["S3_BUCKET"])
    env = dict(os.environ, AWS_ACCESS_KEY_ID=os.environ["S3_ACCESS_KEY"],
               AWS_SECRET_ACCESS_KEY=os.environ["S3_SECRET_KEY"])
    env.pop("AWS_PROFILE", None)
    cmd = [tool_args[0], "--endpoint=" + proxy.endpoint,
           "--url-style=path"] + tool_args[1:]
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL)
    t = time.monotonic() - t0
    if r.returncode:
        sys.exit("%s failed (exit %d)" % (" ".join(cmd), r.returncode))
    reqs = proxy.find()
    if os.environ.get("VERBOSE") == "1":
        for q in reqs:
            print("  %s %s -> %s" % (q.method, q.target, q.status),
                  file=sys.stderr)
    kinds = collections.Counter()
    for q in reqs:
        if q.method == "GET" and "list-type=2" in q.query:
            kinds["LIST"] += 1
        else:
            kinds[q.method] += 1
    chunky = [q for q in reqs if q.key.endswith(".chunk")]
    up = sum(int(q.headers.get("content-length") or 0) for q in reqs)
    up_chunk = sum(int(q.headers.get("content-length") or 0) for q in chunky)
    print("requests=%d %s chunk_requests=%d chunk_bytes_up=%d "
          "chunk_bytes_down=%d body_bytes_up=%d body_bytes_down=%d "
          "seconds=%.3f" % (
              len(reqs), " ".join("%s=%d" % kv for kv in sorted(kinds.items())),
              len(chunky), up_chunk, proxy.down[True], up,
              proxy.down[True] + proxy.down[False], t))
    proxy.close()


def main():
    a = sys.argv[1:]
    if a[:1] == ["open-time"] and len(a) >= 4:
        open_time(int(a[1]), a[2], a[3:])
    elif a[:1] == ["rewrite-half"] and len(a) == 3:
        rewrite_half(a[1], int(a[2]))
    elif a[:1] == ["s3-put-chunks"] and len(a) == 6:
        put_chunks(a[1], a[2], int(a[3]), int(a[4]), int(a[5]))
    elif a[:1] == ["s3-count"] and len(a) >= 2:
        count(a[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
