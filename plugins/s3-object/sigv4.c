/* shardkit s3-object: AWS Signature Version 4.
 * GPL-3.0-or-later.
 *
 * Follows "Create a signed AWS API request" (SigV4) with S3's rules for
 * the canonical URI: the path is percent-encoded once and never
 * normalised (S3 keys may hold "//" or "/./").
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cleanup.h"
#include "sigv4.h"

static const char hexdigits[] = "0123456789abcdef";

static void
to_hex (const unsigned char *in, size_t len, char *out)
{
  size_t i;

  for (i = 0; i < len; ++i) {
    out[2*i] = hexdigits[in[i] >> 4];
    out[2*i+1] = hexdigits[in[i] & 15];
  }
  out[2*len] = '\0';
}

int
sigv4_sha256_hex (const void *data, size_t len, char out[65])
{
  unsigned char md[32];
  unsigned int mdlen = 0;

  if (EVP_Digest (data, len, md, &mdlen, EVP_sha256 (), NULL) != 1 ||
      mdlen != 32) {
    errno = EIO;
    return -1;
  }
  to_hex (md, 32, out);
  return 0;
}

static int
hmac_sha256 (const void *key, size_t keylen, const char *msg,
             unsigned char out[32])
{
  unsigned int len = 0;

  if (HMAC (EVP_sha256 (), key, (int) keylen, (const unsigned char *) msg,
            strlen (msg), out, &len) == NULL || len != 32) {
    errno = EIO;
    return -1;
  }
  return 0;
}

static bool
is_unreserved (unsigned char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

char *
sigv4_uri_encode (const char *s, bool keep_slash)
{
  static const char upper[] = "0123456789ABCDEF";
  size_t len = strlen (s), i, j = 0;
  char *out = malloc (3 * len + 1);

  if (out == NULL)
    return NULL;
  for (i = 0; i < len; ++i) {
    unsigned char c = (unsigned char) s[i];
    if (is_unreserved (c) || (keep_slash && c == '/'))
      out[j++] = (char) c;
    else {
      out[j++] = '%';
      out[j++] = upper[c >> 4];
      out[j++] = upper[c & 15];
    }
  }
  out[j] = '\0';
  return out;
}

/* An encoded query parameter or a canonical header, for sorting. */
struct item {
  char *name;
  char *value;
};

static int
compare_items (const void *a, const void *b)
{
  const struct item *x = a, *y = b;
  int r = strcmp (x->name, y->name);
  return r ? r : strcmp (x->value, y->value);
}

static void
free_items (struct item *items, size_t n)
{
  size_t i;

  if (items == NULL)
    return;
  for (i = 0; i < n; ++i) {
    free (items[i].name);
    free (items[i].value);
  }
  free (items);
}

/* Header value as signed: leading/trailing space removed, runs of spaces
 * and tabs collapsed to one space.
 */
static char *
canonical_header_value (const char *v)
{
  char *out = malloc (strlen (v) + 1);
  size_t j = 0;
  bool space = false;

  if (out == NULL)
    return NULL;
  for (; *v; ++v) {
    if (*v == ' ' || *v == '\t') {
      space = j > 0;
      continue;
    }
    if (space)
      out[j++] = ' ';
    space = false;
    out[j++] = *v;
  }
  out[j] = '\0';
  return out;
}

static char *
lowercase (const char *s)
{
  char *out = strdup (s);
  char *p;

  if (out)
    for (p = out; *p; ++p)
      if (*p >= 'A' && *p <= 'Z')
        *p = (char) (*p - 'A' + 'a');
  return out;
}

static char *
build_canonical_request (const struct sigv4_input *in, char **signed_headers)
{
  struct item *params = NULL, *headers = NULL;
  CLEANUP_FREE char *path = NULL;
  char *text = NULL, *sh = NULL;
  size_t textlen = 0, shlen = 0, i;
  FILE *fp = NULL, *shfp = NULL;

  *signed_headers = NULL;
  path = sigv4_uri_encode (in->path && in->path[0] ? in->path : "/", true);
  params = calloc (in->nparams + 1, sizeof *params);
  headers = calloc (in->nheaders + 1, sizeof *headers);
  if (path == NULL || params == NULL || headers == NULL)
    goto err;

  for (i = 0; i < in->nparams; ++i) {
    params[i].name = sigv4_uri_encode (in->params[i].name, false);
    params[i].value = sigv4_uri_encode (in->params[i].value ?
                                        in->params[i].value : "", false);
    if (params[i].name == NULL || params[i].value == NULL)
      goto err;
  }
  qsort (params, in->nparams, sizeof *params, compare_items);

  for (i = 0; i < in->nheaders; ++i) {
    headers[i].name = lowercase (in->headers[i].name);
    headers[i].value = canonical_header_value (in->headers[i].value);
    if (headers[i].name == NULL || headers[i].value == NULL)
      goto err;
  }
  qsort (headers, in->nheaders, sizeof *headers, compare_items);

  fp = open_memstream (&text, &textlen);
  shfp = open_memstream (&sh, &shlen);
  if (fp == NULL || shfp == NULL)
    goto err;
  fprintf (fp, "%s\n%s\n", in->method, path);
  for (i = 0; i < in->nparams; ++i)
    fprintf (fp, "%s%s=%s", i ? "&" : "", params[i].name, params[i].value);
  fputc ('\n', fp);
  for (i = 0; i < in->nheaders; ++i) {
    fprintf (fp, "%s:%s\n", headers[i].name, headers[i].value);
    fprintf (shfp, "%s%s", i ? ";" : "", headers[i].name);
  }
  if (fclose (shfp) != 0) {
    shfp = NULL;
    goto err;
  }
  shfp = NULL;
  fprintf (fp, "\n%s\n%s", sh, in->payload_sha256);
  if (fclose (fp) != 0) {
    fp = NULL;
    goto err;
  }
  free_items (params, in->nparams);
  free_items (headers, in->nheaders);
  *signed_headers = sh;
  return text;

 err:
  if (fp)
    fclose (fp);
  if (shfp)
    fclose (shfp);
  free (text);
  free (sh);
  free_items (params, in->nparams);
  free_items (headers, in->nheaders);
  errno = ENOMEM;
  return NULL;
}

int
sigv4_sign (const struct sigv4_input *in, struct sigv4_output *out)
{
  CLEANUP_FREE char *signed_headers = NULL;
  CLEANUP_FREE char *secret = NULL;
  char date[9], creq_hash[65], scope[256];
  unsigned char k[32], sig[32];

  memset (out, 0, sizeof *out);
  if (in->amz_date == NULL || strlen (in->amz_date) != 16 ||
      in->payload_sha256 == NULL || strlen (in->payload_sha256) != 64) {
    errno = EINVAL;
    return -1;
  }
  memcpy (date, in->amz_date, 8);
  date[8] = '\0';
  if ((size_t) snprintf (scope, sizeof scope, "%s/%s/%s/aws4_request",
                         date, in->region, in->service) >= sizeof scope) {
    errno = EINVAL;
    return -1;
  }

  out->canonical_request = build_canonical_request (in, &signed_headers);
  if (out->canonical_request == NULL)
    return -1;
  if (sigv4_sha256_hex (out->canonical_request,
                        strlen (out->canonical_request), creq_hash) == -1)
    goto err;
  if (asprintf (&out->string_to_sign, "AWS4-HMAC-SHA256\n%s\n%s\n%s",
                in->amz_date, scope, creq_hash) == -1) {
    out->string_to_sign = NULL;
    goto err;
  }

  /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region),
   *                      service), "aws4_request")
   */
  if (asprintf (&secret, "AWS4%s", in->secret_key) == -1) {
    secret = NULL;
    goto err;
  }
  if (hmac_sha256 (secret, strlen (secret), date, k) == -1 ||
      hmac_sha256 (k, 32, in->region, k) == -1 ||
      hmac_sha256 (k, 32, in->service, k) == -1 ||
      hmac_sha256 (k, 32, "aws4_request", k) == -1 ||
      hmac_sha256 (k, 32, out->string_to_sign, sig) == -1)
    goto err;
  /* Do not leave key material on the heap. */
  OPENSSL_cleanse (secret, strlen (secret));
  OPENSSL_cleanse (k, sizeof k);
  to_hex (sig, 32, out->signature);

  if (asprintf (&out->authorization,
                "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                "Signature=%s", in->access_key, scope, signed_headers,
                out->signature) == -1) {
    out->authorization = NULL;
    goto err;
  }
  return 0;

 err:
  if (secret)
    OPENSSL_cleanse (secret, strlen (secret));
  OPENSSL_cleanse (k, sizeof k);
  sigv4_output_free (out);
  if (errno == 0)
    errno = ENOMEM;
  return -1;
}

void
sigv4_output_free (struct sigv4_output *out)
{
  free (out->canonical_request);
  free (out->string_to_sign);
  free (out->authorization);
  out->canonical_request = out->string_to_sign = out->authorization = NULL;
}
