/* Unit test: the SigV4 signer of s3-object against AWS's published
 * Signature Version 4 test suite (service "service", us-east-1,
 * 20150830T123600Z, the suite's example key) and the worked example of
 * the S3 documentation (a ranged GET).  Each vector checks the signature
 * and, where published, the canonical request's hash or the canonical
 * URI, so that a failure says which part is wrong.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"
#include "test-util.h"

#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define SUITE_HOST "example.amazonaws.com"

struct vector {
  const char *name;
  const char *method;
  const char *path;
  struct sigv4_pair params[3];
  size_t nparams;
  struct sigv4_pair headers[3];        /* besides host and x-amz-date */
  size_t nheaders;
  const char *body;
  const char *signed_headers;
  const char *signature;
  const char *creq_sha256;             /* NULL if not checked */
};

static const struct vector vectors[] = {
  { "get-vanilla", "GET", "/", {}, 0, {}, 0, "",
    "host;x-amz-date",
    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63" },
  { "get-unreserved", "GET",
    "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    {}, 0, {}, 0, "", "host;x-amz-date",
    "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    NULL },
  { "get-vanilla-query-order-key-case", "GET", "/",
    { { "Param2", "value2" }, { "Param1", "value1" } }, 2, {}, 0, "",
    "host;x-amz-date",
    "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0" },
  { "get-vanilla-query-order-value", "GET", "/",
    { { "Param1", "value2" }, { "Param1", "value1" } }, 2, {}, 0, "",
    "host;x-amz-date",
    "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
    NULL },
  { "get-vanilla-utf8-query", "GET", "/",
    { { "\xe1\x88\xb4", "bar" } }, 1, {}, 0, "", "host;x-amz-date",
    "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    NULL },
  { "get-header-key-duplicate", "GET", "/", {}, 0,
    { { "My-Header1", "value2,value2,value1" } }, 1, "",
    "host;my-header1;x-amz-date",
    "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    NULL },
  { "get-header-value-order", "GET", "/", {}, 0,
    { { "My-Header1", "value4,value1,value3,value2" } }, 1, "",
    "host;my-header1;x-amz-date",
    "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    NULL },
  { "get-header-value-trim", "GET", "/", {}, 0,
    { { "My-Header1", " value1" }, { "My-Header2", "\"a   b   c\"" } }, 2,
    "", "host;my-header1;my-header2;x-amz-date",
    "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    NULL },
  { "post-x-www-form-urlencoded", "POST", "/", {}, 0,
    { { "Content-Type", "application/x-www-form-urlencoded" } }, 1,
    "Param1=value1", "content-type;host;x-amz-date",
    "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281" },
};

static void
check_vector (const struct vector *v)
{
  struct sigv4_pair hs[5];
  size_t nh = 0, i;
  char payload[65], creq_hash[65], expect[512];
  struct sigv4_output out;
  struct sigv4_input in;

  hs[nh++] = (struct sigv4_pair) { "Host", SUITE_HOST };
  hs[nh++] = (struct sigv4_pair) { "X-Amz-Date", SUITE_DATE };
  for (i = 0; i < v->nheaders; ++i)
    hs[nh++] = v->headers[i];
  CHECK (sigv4_sha256_hex (v->body, strlen (v->body), payload) == 0);
  in = (struct sigv4_input) {
    .method = v->method, .path = v->path,
    .params = v->params, .nparams = v->nparams,
    .headers = hs, .nheaders = nh, .payload_sha256 = payload,
    .amz_date = SUITE_DATE, .region = "us-east-1", .service = "service",
    .access_key = "AKIDEXAMPLE", .secret_key = SUITE_SECRET,
  };
  if (sigv4_sign (&in, &out) != 0) {
    fprintf (stderr, "%s: sigv4_sign failed\n", v->name);
    test_failures++;
    return;
  }
  snprintf (expect, sizeof expect,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
            "service/aws4_request, SignedHeaders=%s, Signature=%s",
            v->signed_headers, v->signature);
  if (v->creq_sha256) {
    CHECK (sigv4_sha256_hex (out.canonical_request,
                             strlen (out.canonical_request), creq_hash) == 0);
    if (strcmp (creq_hash, v->creq_sha256) != 0) {
      fprintf (stderr, "%s: canonical request differs:\n%s\n", v->name,
               out.canonical_request);
      test_failures++;
    }
  }
  if (strcmp (out.authorization, expect) != 0) {
    fprintf (stderr, "%s: got\n  %s\nexpected\n  %s\ncanonical request:\n%s\n",
             v->name, out.authorization, expect, out.canonical_request);
    test_failures++;
  }
  sigv4_output_free (&out);
}

/* The canonical URI line of a vector's request (second line). */
static void
check_uri (const char *name, const char *path, const char *want)
{
  struct sigv4_pair hs[] = { { "host", SUITE_HOST }, { "x-amz-date", SUITE_DATE } };
  struct sigv4_input in = {
    .method = "GET", .path = path, .headers = hs, .nheaders = 2,
    .payload_sha256 = SIGV4_EMPTY_SHA256, .amz_date = SUITE_DATE,
    .region = "us-east-1", .service = "service",
    .access_key = "AKIDEXAMPLE", .secret_key = SUITE_SECRET,
  };
  struct sigv4_output out;
  char *line, *end;

  CHECK (sigv4_sign (&in, &out) == 0);
  line = strchr (out.canonical_request, '\n') + 1;
  end = strchr (line, '\n');
  *end = '\0';
  if (strcmp (line, want) != 0) {
    fprintf (stderr, "%s: canonical URI %s, expected %s\n", name, line, want);
    test_failures++;
  }
  sigv4_output_free (&out);
}

/* The example "GET Object" of the S3 documentation (Signature
 * Calculations for the Authorization Header), which signs a Range
 * header and x-amz-content-sha256 as this plugin does.
 */
static void
check_s3_example (void)
{
  struct sigv4_pair hs[] = {
    { "Host", "examplebucket.s3.amazonaws.com" },
    { "Range", "bytes=0-9" },
    { "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
    { "x-amz-date", "20130524T000000Z" },
  };
  struct sigv4_input in = {
    .method = "GET", .path = "/test.txt", .headers = hs, .nheaders = 4,
    .payload_sha256 = SIGV4_EMPTY_SHA256, .amz_date = "20130524T000000Z",
    .region = "us-east-1", .service = "s3",
    .access_key = "AKIAIOSFODNN7EXAMPLE",
    .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  };
  struct sigv4_output out;

  CHECK (sigv4_sign (&in, &out) == 0);
  if (strcmp (out.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41") != 0) {
    fprintf (stderr, "s3 GET example: signature %s\n%s\n", out.signature,
             out.canonical_request);
    test_failures++;
  }
  sigv4_output_free (&out);
}

int
main (void)
{
  size_t i;
  char *s;

  for (i = 0; i < sizeof vectors / sizeof vectors[0]; ++i)
    check_vector (&vectors[i]);
  check_uri ("get-utf8", "/\xe1\x88\xb4", "/%E1%88%B4");
  check_uri ("get-space", "/example space/", "/example%20space/");
  /* S3 keys are not normalised: "//" and "/./" are part of the key. */
  check_uri ("s3 key with slashes", "/b//k/./x", "/b//k/./x");
  check_s3_example ();

  s = sigv4_uri_encode ("a b/c+d%e~f", false);
  CHECK (strcmp (s, "a%20b%2Fc%2Bd%25e~f") == 0);
  free (s);
  s = sigv4_uri_encode ("a b/c", true);
  CHECK (strcmp (s, "a%20b/c") == 0);
  free (s);
  TEST_EXIT ();
}
