/* Unit test: NAME.meta parsing and formatting, malformed input included,
 * and its checksum line: what the writer adds, what the reader refuses,
 * and files from before it (no checksum line) still read.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
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
/* GOOD with its checksum line: CRC32C of GOOD's bytes, computed
 * independently of crc32c.c (a bitwise Python implementation).
 */
#define GOOD_CHECKSUM_LINE "checksum=crc32c:b353adee\n"

static int
parse (const char *text, char *err, size_t errlen)
{
  struct volume_meta m;
  return volume_meta_parse (text, strlen (text), &m, err, errlen);
}

/* GOOD, then LINES (with their newlines). */
static int
parse_good_then (const char *lines, char *err, size_t errlen)
{
  char t[1024];
  snprintf (t, sizeof t, "%s%s", good, lines);
  return parse (t, err, errlen);
}

static void
expect_refused (const char *lines, const char *in_msg)
{
  char err[256] = "";

  if (parse_good_then (lines, err, sizeof err) != -1) {
    fprintf (stderr, "accepted good text followed by '%s'\n", lines);
    test_failures++;
  }
  else if (strstr (err, in_msg) == NULL) {
    fprintf (stderr, "error '%s' does not mention '%s'\n", err, in_msg);
    test_failures++;
  }
}

/* Every change of one byte of TEXT (to any other value) is refused. */
static void
check_every_byte_change (const char *text)
{
  size_t len = strlen (text), i;
  char *t = malloc (len);
  char err[256];
  struct volume_meta m;
  unsigned c;

  CHECK (t != NULL);
  for (i = 0; i < len; ++i) {
    for (c = 0; c < 256; ++c) {
      if ((char) c == text[i])
        continue;
      memcpy (t, text, len);
      t[i] = (char) c;
      if (volume_meta_parse (t, len, &m, err, sizeof err) != -1) {
        fprintf (stderr, "byte %zu changed to 0x%02x: accepted\n", i, c);
        test_failures++;
      }
    }
  }
  free (t);
}

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
  CHECK (strcmp (m.created, m2.created) == 0);
  /* The writer ends with the checksum line, 8 lowercase hex digits. */
  {
    const char *last = strstr (text, "\nchecksum=crc32c:");
    size_t i;
    CHECK (last != NULL);
    if (last) {
      last++;
      CHECK (strlen (last) == strlen ("checksum=crc32c:") + 9);
      for (i = strlen ("checksum=crc32c:"); i < 24; ++i)
        CHECK ((last[i] >= '0' && last[i] <= '9') ||
               (last[i] >= 'a' && last[i] <= 'f'));
      CHECK (last[24] == '\n');
    }
  }
  /* Each single-byte change of what the writer wrote is refused. */
  check_every_byte_change (text);
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
  /* Unknown keys are ignored, but a file without a checksum may not end
   * with one: that is what a damaged checksum line looks like.
   */
  {
    const char t[] = "format=shardkit-volume\nversion=1\nfuture-key=1\n"
      "size=512\nchunk-size=65536\n"
      "uuid=5e0f8f9c-2a53-4a57-9d0e-6c1b8a3f1e42\ncreated=x\n";
    CHECK (parse (t, err, sizeof err) == 0);
  }
  expect_refused ("future-key=1\n", "no checksum line");
  expect_refused ("# a comment\n", "no checksum line");
  expect_refused ("#hecksum=crc32c:b353adee\n", "no checksum line");
  expect_refused ("checksun=crc32c:b353adee\n", "no checksum line");
  {
    /* In a file with a checksum they are fine (and covered by it). */
    const char t[] = "# x\nformat=shardkit-volume\nversion=1\nsize=512\n"
      "chunk-size=65536\nuuid=5e0f8f9c-2a53-4a57-9d0e-6c1b8a3f1e42\n"
      "created=x\nfuture-key=1\n# end\n";
    char *t2 = NULL;
    CHECK (asprintf (&t2, "%schecksum=crc32c:%08x\n", t,
                     crc32c (0, t, strlen (t))) > 0);
    CHECK (t2 && parse (t2, err, sizeof err) == 0);
    free (t2);
  }

  /* The checksum line. */
  CHECK (parse_good_then (GOOD_CHECKSUM_LINE, err, sizeof err) == 0);
  {
    /* Old format (the tests above) and new format give the same. */
    char t[1024];
    snprintf (t, sizeof t, "%s%s", good, GOOD_CHECKSUM_LINE);
    CHECK (volume_meta_parse (t, strlen (t), &m, err, sizeof err) == 0);
    CHECK (m.size == 1073741824 && m.chunk_size == 4194304);
    check_every_byte_change (t);
  }
  expect_refused ("checksum=crc32c:b353adef\n", "checksum mismatch");
  expect_refused ("checksum=crc32c:00000000\n", "checksum mismatch");
  expect_refused ("checksum=crc32c:B353ADEE\n", "malformed");
  expect_refused ("checksum=crc32c:b353ade\n", "malformed");
  expect_refused ("checksum=crc32c:b353adee0\n", "malformed");
  expect_refused ("checksum=crc32c:b353adeg\n", "malformed");
  expect_refused ("checksum=crc32c: b353adee\n", "malformed");
  expect_refused ("checksum=crc32:b353adee\n", "malformed");
  expect_refused ("checksum=\n", "malformed");
  expect_refused ("checksum=crc32c:b353adee\r\n", "malformed");
  expect_refused (GOOD_CHECKSUM_LINE "size=512\n", "not the last line");
  expect_refused (GOOD_CHECKSUM_LINE "\n", "not the last line");
  expect_refused (GOOD_CHECKSUM_LINE "# comment\n", "not the last line");
  expect_refused (GOOD_CHECKSUM_LINE GOOD_CHECKSUM_LINE, "checksum mismatch");
  {
    /* A value changed by hand, the checksum line kept. */
    char t[1024];
    snprintf (t, sizeof t, "%s%s", good, GOOD_CHECKSUM_LINE);
    memcpy (strstr (t, "size=1073741824"), "size=2073741824", 15);
    CHECK (parse (t, err, sizeof err) == -1);
    CHECK (strstr (err, "checksum mismatch") && strstr (err, "b353adee"));
  }

  /* Malformed input. */
  CHECK (volume_meta_parse ("", 0, &m, err, sizeof err) == -1);
  CHECK (volume_meta_parse (good, 5000, &m, err, sizeof err) == -1);
  expect_bad ("format", "format=qcow2\n", "format");
  expect_bad ("format", "", "format");
  expect_bad ("version", "version=4\n", "not supported");
  expect_bad ("version", "version=4\n", "a newer shardkit");
  /* Version 2 is that of volumes in snapshots: it needs their keys. */
  expect_bad ("version", "version=2\n", "without any of its keys");
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

  /* Version 2: the snapshot keys, written only when they apply. */
  {
    struct volume_meta l;
    char *t;

    CHECK (volume_meta_init (&l, 1 << 20, 65536) == 0);
    t = volume_meta_format (&l);
    CHECK (t && strstr (t, "version=1\n") && !strstr (t, "base"));
    free (t);
    l.read_only = true;
    strcpy (l.data, "vm");
    l.data_generation = 4;
    strcpy (l.base, "older");
    strcpy (l.base_uuid, "5e0f8f9c-2a53-4a57-9d0e-6c1b8a3f1e42");
    CHECK ((t = volume_meta_format (&l)) != NULL);
    CHECK (strstr (t, "version=2\n") && strstr (t, "data=vm@4\n") &&
           strstr (t, "read-only=1\n") && strstr (t, "base=older\n") &&
           !strstr (t, "generation="));
    CHECK (volume_meta_parse (t, strlen (t), &m2, err, sizeof err) == 0);
    CHECK (m2.read_only && m2.data_generation == 4 &&
           strcmp (m2.data, "vm") == 0 && strcmp (m2.base, "older") == 0 &&
           strcmp (m2.base_uuid, l.base_uuid) == 0 && m2.generation == 0);
    free (t);
    memset (l.data, 0, sizeof l.data);
    l.read_only = false;
    l.generation = 9;
    CHECK ((t = volume_meta_format (&l)) != NULL);
    CHECK (volume_meta_parse (t, strlen (t), &m2, err, sizeof err) == 0);
    CHECK (m2.generation == 9 && !m2.read_only && m2.data[0] == '\0');
    free (t);
  }
  /* Snapshot keys in a version 1 file, or malformed. */
  expect_bad ("version", "version=1\ngeneration=2\n", "needs version 2");
  expect_bad ("version", "version=2\ngeneration=0\n", "generation");
  expect_bad ("version", "version=2\nbase=x\n", "go together");
  expect_bad ("version", "version=2\ndata=vm@1\n", "snapshots");
  expect_bad ("version", "version=2\nread-only=1\ndata=vm@0\n", "data");
  expect_bad ("version", "version=2\nbase=../x\n"
              "base-uuid=5e0f8f9c-2a53-4a57-9d0e-6c1b8a3f1e42\n", "base");

  /* Version 2: the keys of a set of locations (a mirror). */
  {
    struct volume_meta l;
    char *t;

    CHECK (volume_meta_init (&l, 1 << 20, 65536) == 0);
    strcpy (l.redundancy, VOLUME_REDUNDANCY_MIRROR);
    l.set_size = 3;
    l.set_index = 0;
    CHECK ((t = volume_meta_format (&l)) != NULL);
    CHECK (strstr (t, "version=2\n") && strstr (t, "redundancy=mirror\n") &&
           strstr (t, "set-size=3\n") && strstr (t, "set-index=0\n") &&
           !strstr (t, "generation=") && !strstr (t, "base="));
    CHECK (volume_meta_parse (t, strlen (t), &m2, err, sizeof err) == 0);
    CHECK (m2.set_size == 3 && m2.set_index == 0 &&
           strcmp (m2.redundancy, "mirror") == 0 &&
           strcmp (m2.uuid, l.uuid) == 0);
    free (t);
    l.set_index = 2;
    CHECK ((t = volume_meta_format (&l)) != NULL);
    CHECK (volume_meta_parse (t, strlen (t), &m2, err, sizeof err) == 0);
    CHECK (m2.set_index == 2);
    free (t);
  }
  /* Version 3: an erasure-coded set. */
  {
    struct volume_meta l;
    char *t;

    CHECK (volume_meta_init (&l, 1 << 20, 65536) == 0);
    strcpy (l.redundancy, VOLUME_REDUNDANCY_EC);
    l.ec_k = 4;
    l.ec_m = 2;
    l.set_size = 6;
    l.set_index = 5;
    CHECK ((t = volume_meta_format (&l)) != NULL);
    CHECK (strstr (t, "version=3\n") && strstr (t, "redundancy=ec:4+2\n") &&
           strstr (t, "set-size=6\n") && strstr (t, "set-index=5\n"));
    CHECK (volume_meta_parse (t, strlen (t), &m2, err, sizeof err) == 0);
    CHECK (m2.set_size == 6 && m2.set_index == 5 && m2.ec_k == 4 &&
           m2.ec_m == 2 && strcmp (m2.redundancy, "ec") == 0);
    free (t);
  }
  /* Set keys in a version 1 file, alone, or out of range. */
  expect_bad ("version", "version=1\nredundancy=mirror\nset-size=2\n"
              "set-index=1\n", "needs version 2");
  expect_bad ("version", "version=2\nredundancy=mirror\n", "go together");
  expect_bad ("version", "version=2\nset-size=2\nset-index=0\n",
              "go together");
  /* Erasure coding needs version 3, so that a version 2 reader never
   * serves a location's fragments as a disk.
   */
  expect_bad ("version", "version=2\nredundancy=ec:4+2\nset-size=6\n"
              "set-index=0\n", "needs version 3");
  expect_bad ("version", "version=3\nredundancy=mirror\nset-size=2\n"
              "set-index=0\n", "without redundancy ec");
  expect_bad ("version", "version=3\n", "without");
  expect_bad ("version", "version=3\nredundancy=ec:4+2\nset-size=5\n"
              "set-index=0\n", "K+M");
  expect_bad ("version", "version=3\nredundancy=ec:0+2\nset-size=2\n"
              "set-index=0\n", "not supported");
  expect_bad ("version", "version=3\nredundancy=ec:2+0\nset-size=2\n"
              "set-index=0\n", "not supported");
  expect_bad ("version", "version=3\nredundancy=ec:02+1\nset-size=3\n"
              "set-index=0\n", "not supported");
  expect_bad ("version", "version=3\nredundancy=ec:2+1x\nset-size=3\n"
              "set-index=0\n", "not supported");
  expect_bad ("version", "version=3\nredundancy=ec:6+3\nset-size=9\n"
              "set-index=0\n", "not supported");
  expect_bad ("version", "version=3\nredundancy=ec\nset-size=3\n"
              "set-index=0\n", "not supported");
  expect_bad ("version", "version=2\nredundancy=mirror\nset-size=1\n"
              "set-index=0\n", "set-size");
  expect_bad ("version", "version=2\nredundancy=mirror\nset-size=9\n"
              "set-index=0\n", "set-size");
  expect_bad ("version", "version=2\nredundancy=mirror\nset-size=2\n"
              "set-index=2\n", "not below");
  expect_bad ("version", "version=2\nredundancy=mirror\nset-size=2\n"
              "set-index=01\n", "set-index");

  TEST_EXIT ();
}
