"""s3-object's SigV4 signer against botocore's (an independent
implementation, Debian python3-botocore): a few hundred randomized
requests -- odd keys (spaces, '+', '%', '?', '#', '=', '&', '//', '/./',
unicode), query strings, header values with runs of blanks, empty and
non-empty bodies -- must give the same canonical request and the same
signature.  Replay with SEED=n."""

import hashlib
import os
import random
import subprocess
import sys
from urllib.parse import quote

from shardkit_test import check, seed_from_env, skip

try:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError:
    skip("botocore not found (apt-get install python3-botocore)")

DUMP = os.path.join(os.environ.get("builddir", os.path.dirname(__file__)),
                    "sigv4-dump")
if not os.access(DUMP, os.X_OK):
    skip("sigv4-dump not built")

rng = random.Random(seed_from_env())
N = 400

KEY_CHARS = ("abcXYZ019-._~/ +%?#=&!$'()*,;:@[]" + "\u00e9\u1234\U0001f600"
             + "\"<>\\^`{|}")
VALUE_CHARS = "abcXYZ019-._~ +%/=&?:@,\u00e9\u1234"
HDR_CHARS = "abcXYZ019-._~ /=:;,\"'()"


def rand_str(chars, lo, hi):
    return "".join(rng.choice(chars) for _ in range(rng.randint(lo, hi)))


def rand_key():
    k = rand_str(KEY_CHARS, 1, 40)
    if rng.random() < 0.2:
        k = k.replace("x", "//") + "/./y"
    return k


def hexs(s):
    return s.encode("utf-8").hex()


cases = []
for i in range(N):
    method = rng.choice(["GET", "PUT", "HEAD", "DELETE", "POST"])
    path = "/bucket/" + rand_key() if rng.random() < 0.9 else "/"
    params = {}
    for _ in range(rng.randint(0, 4)):
        params[rand_str(VALUE_CHARS, 1, 10)] = rand_str(VALUE_CHARS, 0, 12)
    if rng.random() < 0.2:
        params["delete"] = ""
    body = b"" if rng.random() < 0.4 else os.urandom(rng.randint(1, 3000))
    payload = hashlib.sha256(body).hexdigest()
    date = "2026%02d%02dT%02d%02d%02dZ" % (rng.randint(1, 12),
                                         rng.randint(1, 28),
                                         rng.randint(0, 23),
                                         rng.randint(0, 59),
                                         rng.randint(0, 59))
    headers = {
        "host": rng.choice(["127.0.0.1:7480", "s3.example.net",
                            "bucket.s3.us-west-2.amazonaws.com"]),
        "x-amz-date": date,
        "x-amz-content-sha256": payload,
    }
    for _ in range(rng.randint(0, 3)):
        name = "x-amz-meta-" + rand_str("abcxyz0129-", 1, 10)
        v = rand_str(HDR_CHARS, 0, 20)
        if rng.random() < 0.3:
            v = "  " + v.replace(" ", "   ") + " \t "
        headers[name] = v
    if rng.random() < 0.3:
        headers["Range"] = "bytes=%d-%d" % (rng.randint(0, 99),
                                            rng.randint(100, 999))
    if rng.random() < 0.3:
        headers["Content-MD5"] = rand_str("abcABC0129+/=", 24, 24)
    region = rng.choice(["us-east-1", "eu-west-3", "default"])
    ak = rand_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 16, 20)
    sk = rand_str("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789+/", 40, 40)
    cases.append((method, path, params, headers, payload, date, region, ak,
                  sk, body))

lines = []
for (method, path, params, headers, payload, date, region, ak, sk,
     body) in cases:
    f = [hexs(method), hexs(path), str(len(params))]
    for k, v in params.items():
        f += [hexs(k), hexs(v)]
    f.append(str(len(headers)))
    for k, v in headers.items():
        f += [hexs(k), hexs(v)]
    f += [hexs(payload), hexs(date), hexs(region), hexs("s3"), hexs(ak),
          hexs(sk)]
    lines.append("\t".join(f))
out = subprocess.run([DUMP], input="\n".join(lines) + "\n",
                     capture_output=True, text=True, check=True).stdout
results = out.splitlines()
check(len(results) == N, "sigv4-dump answered %d of %d" % (len(results), N))

mismatch = 0
for case, res in zip(cases, results):
    (method, path, params, headers, payload, date, region, ak, sk,
     body) = case
    c_creq_hex, c_sig = res.split("\t")
    c_creq = bytes.fromhex(c_creq_hex).decode("utf-8")

    # What botocore signs: the URL as sent (path percent-encoded once,
    # as botocore's own S3 serializer does, query encoded per SigV4).
    query = "&".join("%s=%s" % (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                     for k, v in params.items())
    url = "http://" + headers["host"] + quote(path, safe="/~") + \
        ("?" + query if query else "")
    req = AWSRequest(method=method, url=url, headers=dict(headers),
                     data=body)
    req.context["timestamp"] = date
    auth = S3SigV4Auth(Credentials(ak, sk), "s3", region)
    b_creq = auth.canonical_request(req)
    b_sts = auth.string_to_sign(req, b_creq)
    b_sig = auth.signature(b_sts, req)
    if b_creq != c_creq or b_sig != c_sig:
        mismatch += 1
        if mismatch <= 3:
            print("MISMATCH for %r %r %r\n--- ours:\n%s\n--- botocore:\n%s\n"
                  "%s vs %s" % (method, path, params, c_creq, b_creq, c_sig,
                                b_sig), file=sys.stderr)
check(mismatch == 0, "%d of %d requests signed differently" % (mismatch, N))
print("%d randomized requests: canonical requests and signatures agree "
      "with botocore" % N)
