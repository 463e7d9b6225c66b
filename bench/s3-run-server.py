#!/usr/bin/python3
"""Run a command beside a fresh local S3 server, like `nbdkit --run`.

  bench/s3-run-server.py ceph|s3rver [--bucket NAME] -- COMMAND [ARGS...]

starts the server on a free port of 127.0.0.1 (tests/s3_server.py: a
one-node Ceph cluster with its RADOS Gateway and an in-memory OSD, or
s3rver), creates the bucket, runs COMMAND with

  S3_SERVER        ceph | s3rver
  S3_ENDPOINT      http://127.0.0.1:PORT
  S3_BUCKET        the bucket
  S3_REGION        us-east-1
  S3_ACCESS_KEY    S3_SECRET_KEY   the user's keys
  S3_SERVER_PIDS   the PIDs doing the server's work (gateway and OSD for
                   Ceph), for CPU accounting from /proc/PID/stat

in its environment, then stops the server (also if COMMAND fails or this
script is interrupted) and exits with COMMAND's status.  Exit 77 if the
server's packages are missing.  Everything the server stores is in RAM
(Ceph: about twice the data) and gone afterwards.
"""

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
import s3_server  # noqa: E402


def main():
    ap = argparse.ArgumentParser(usage=__doc__.split("\n")[2].strip())
    ap.add_argument("server", choices=("ceph", "s3rver"))
    ap.add_argument("--bucket", default="shardkit")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("no command")
    if a.server == "ceph":
        s = s3_server.CephRGW(bucket=a.bucket)
        pids = [s.gw.pid, s.osd.pid]
    else:
        s = s3_server.S3rver(bucket=a.bucket)
        pids = [s.proc.pid]
    print("%s ready in %.2f s at %s" % (a.server, s.start_seconds,
                                        s.endpoint), file=sys.stderr,
          flush=True)
    env = dict(os.environ, S3_SERVER=a.server, S3_ENDPOINT=s.endpoint,
               S3_BUCKET=s.bucket, S3_REGION=s3_server.REGION,
               S3_ACCESS_KEY=s.access_key, S3_SECRET_KEY=s.secret_key,
               S3_SERVER_PIDS=" ".join(map(str, pids)))
    rc = subprocess.call(cmd, env=env)
    s.stop()
    sys.exit(rc)


if __name__ == "__main__":
    main()
