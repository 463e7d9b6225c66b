/* Unit test: NAME.meta parsing and formatting, malformed input included.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "test-util.h"
#include "volume-meta.h"

static const char good[] =
  "# comment\n"
  "format=shardkit-volume\n"
  "version=1\n"
  "size=1073741824\n"
  "chunk-size=4194304\n"
  "uuid=5e0f8f9c-2a53-4a57-9d0e-6c1b8a3f1e42\n"
  "created=2026-11-25T11:50:00Z\n";

/* Parse GOOD with one line replaced (or removed when REPL is ""). */
static int
parse_with (const char *key, const char *repl, char *err, size_t errlen)
{
  char text[1024] = "";
  const char *line = good;
  struct volume_meta m;

  while (*line) {
    const char *nl = strchr (line, '\n');
    size_t n = (size_t) (nl - line) + 1;
    if (strncmp (line, key, strlen (key)) == 0 && line[strlen (key)] == '=')
      strcat (text, repl);
    else
      strncat (text, line, n);
    line += n;
  }
  return volume_meta_parse (text, strlen (text), &m, err, errlen);
}

static void
expect_bad (const char *key, const char *repl, const char *in_msg)
{
  char err[256] = "";

  if (parse_with (key, repl, err, sizeof err) != -1) {
    fprintf (stderr, "accepted bad %s line '%s'\n", key, repl);
    test_failures++;
  }
  else if (strstr (err, in_msg) == NULL) {
    fprintf (stderr, "error '%s' does not mention '%s'\n", err, in_msg);
    test_failures++;
  }
}

int
main (void)
{
  struct volume_meta m, m2;
  char err[256];
  char *text;

  CHECK (volume_meta_parse (good, strlen (good), &m, err, sizeof err) == 0);
  CHECK (m.size == 1073741824);
  CHECK (m.chunk_size == 4194304);
  CHECK (strcmp (m.uuid, "5e0f8f9c-2a53-4a57-9d0e-6c1b8a3f1e42") == 0);
  CHECK (strcmp (m.created, "2026-11-25T11:50:00Z") == 0);

  /* Round trip through init and format. */
  CHECK (volume_meta_init (&m, 12345, 65536) == 0);
  text = volume_meta_format (&m);
  CHECK (text != NULL);
  CHECK (volume_meta_parse (text, strlen (text), &m2, err, sizeof err) == 0);
  CHECK (m2.size == 12345 && m2.chunk_size == 65536);
  CHECK (strcmp (m.uuid, m2.uuid) == 0);
  free (text);
  /* Two volumes never share a UUID. */
  CHECK (volume_meta_init (&m2, 12345, 65536) == 0);
  CHECK (strcmp (m.uuid, m2.uuid) != 0);
  CHECK (volume_meta_init (&m2, 0, 65536) == -1);
  CHECK (volume_meta_init (&m2, 100, 1000) == -1);

  /* Chunk sizes. */
  CHECK (chunk_size_is_valid (65536));
  CHECK (chunk_size_is_valid (1024 * 1024 * 1024));
  CHECK (!chunk_size_is_valid (32768));
  CHECK (!chunk_size_is_valid (3 * 65536));
  CHECK (!chunk_size_is_valid (UINT64_C (2) * 1024 * 1024 * 1024));

  /* Creation parameters against an existing volume. */
  CHECK (volume_meta_init (&m, 1048576, 65536) == 0);
  CHECK (volume_meta_check_create (&m, 0, 0, err, sizeof err) == 0);
  CHECK (volume_meta_check_create (&m, 1048576, 65536, err, sizeof err) == 0);
  CHECK (volume_meta_check_create (&m, 2097152, 0, err, sizeof err) == -1 &&
         strstr (err, "size=2097152") && strstr (err, "1048576"));
  CHECK (volume_meta_check_create (&m, 0, 131072, err, sizeof err) == -1 &&
         strstr (err, "chunk-size=131072"));

  /* CRLF line ends are tolerated. */
  {
    const char crlf[] = "format=shardkit-volume\r\nversion=1\r\nsize=512\r\n"
      "chunk-size=65536\r\nuuid=5e0f8f9c-2a53-4a57-9d0e-6c1b8a3f1e42\r\n"
      "created=x\r\n";
    CHECK (volume_meta_parse (crlf, strlen (crlf), &m, err, sizeof err) == 0);
  }
  /* Unknown keys are ignored. */
  {
    char t[1024];
    snprintf (t, sizeof t, "%sfuture-key=1\n", good);
    CHECK (volume_meta_parse (t, strlen (t), &m, err, sizeof err) == 0);
  }

  /* Malformed input. */
  CHECK (volume_meta_parse ("", 0, &m, err, sizeof err) == -1);
  CHECK (volume_meta_parse (good, 5000, &m, err, sizeof err) == -1);
  expect_bad ("format", "format=qcow2\n", "format");
  expect_bad ("format", "", "format");
  expect_bad ("version", "version=2\n", "not supported");
  expect_bad ("version", "version=one\n", "version");
  expect_bad ("size", "size=0\n", "size");
  expect_bad ("size", "size=-1\n", "size");
  expect_bad ("size", "size=1G\n", "size");
  expect_bad ("size", "size= 100\n", "size");
  expect_bad ("size", "size=0100\n", "size");
  expect_bad ("size", "size=99999999999999999999999\n", "size");
  expect_bad ("size", "size=9223372036854775808\n", "size");
  expect_bad ("size", "", "missing");
  expect_bad ("chunk-size", "chunk-size=4000000\n", "chunk-size");
  expect_bad ("chunk-size", "chunk-size=4096\n", "chunk-size");
  expect_bad ("chunk-size", "chunk-size=2147483648\n", "chunk-size");
  expect_bad ("uuid", "uuid=not-a-uuid\n", "uuid");
  expect_bad ("uuid", "uuid=5e0f8f9c-2a53-4a57-9d0e-6c1b8a3f1e4\n", "uuid");
  expect_bad ("uuid", "uuid=5e0f8f9cx2a53-4a57-9d0e-6c1b8a3f1e42\n", "uuid");
  expect_bad ("created", "created=\n", "created");
  expect_bad ("size", "size=512\nsize=512\n", "twice");
  expect_bad ("size", "garbage line\n", "key=value");
  expect_bad ("size", "size=5\001\n", "control");
  {
    char t[1024];
    size_t n = strlen (good);
    memcpy (t, good, n);
    t[10] = '\0';               /* a NUL inside the text */
    CHECK (volume_meta_parse (t, n, &m, err, sizeof err) == -1);
    CHECK (strstr (err, "NUL") != NULL);
  }
  /* Truncated files: every prefix of a good file is refused. */
  {
    size_t n, len = strlen (good);
    for (n = 1; n < len; ++n)
      CHECK (volume_meta_parse (good, n, &m, err, sizeof err) == -1);
  }

  TEST_EXIT ();
}
