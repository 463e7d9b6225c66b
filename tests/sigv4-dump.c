/* Test helper: sign requests read from stdin with s3-object's signer and
 * print the canonical request and signature, so that
 * test-s3-object-sigv4-botocore.py can compare them with botocore's.
 *
 * One request per input line, tab-separated fields, each hex-encoded
 * (so that any byte can be passed):
 *   method path nparams [name value]... nheaders [name value]...
 *   payload-sha256 amz-date region service access-key secret-key
 * (nparams and nheaders are plain decimal).  Output per request:
 *   hex(canonical request) TAB signature NEWLINE
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

static char *
unhex (const char *s)
{
  size_t len = strlen (s), i;
  char *out = malloc (len / 2 + 1);

  if (out == NULL || len % 2)
    exit (2);
  for (i = 0; i < len / 2; ++i) {
    unsigned v;
    if (sscanf (s + 2 * i, "%2x", &v) != 1)
      exit (2);
    out[i] = (char) v;
  }
  out[len / 2] = '\0';
  return out;
}

static char *
field (char **p)
{
  char *f = strsep (p, "\t\n");
  if (f == NULL)
    exit (2);
  return f;
}

int
main (void)
{
  char *line = NULL;
  size_t cap = 0;

  while (getline (&line, &cap, stdin) > 0) {
    char *p = line;
    struct sigv4_input in = { 0 };
    struct sigv4_output out;
    struct sigv4_pair *params, *headers;
    size_t i;
    const char *s;

    in.method = unhex (field (&p));
    in.path = unhex (field (&p));
    in.nparams = strtoul (field (&p), NULL, 10);
    params = calloc (in.nparams + 1, sizeof *params);
    for (i = 0; i < in.nparams; ++i) {
      params[i].name = unhex (field (&p));
      params[i].value = unhex (field (&p));
    }
    in.params = params;
    in.nheaders = strtoul (field (&p), NULL, 10);
    headers = calloc (in.nheaders + 1, sizeof *headers);
    for (i = 0; i < in.nheaders; ++i) {
      headers[i].name = unhex (field (&p));
      headers[i].value = unhex (field (&p));
    }
    in.headers = headers;
    in.payload_sha256 = unhex (field (&p));
    in.amz_date = unhex (field (&p));
    in.region = unhex (field (&p));
    in.service = unhex (field (&p));
    in.access_key = unhex (field (&p));
    in.secret_key = unhex (field (&p));
    if (sigv4_sign (&in, &out) == -1) {
      perror ("sigv4_sign");
      exit (1);
    }
    for (s = out.canonical_request; *s; ++s)
      printf ("%02x", (unsigned char) *s);
    printf ("\t%s\n", out.signature);
    sigv4_output_free (&out);
    /* The test program exits right away: no point freeing the fields. */
  }
  free (line);
  return 0;
}
