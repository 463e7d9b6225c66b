/* Unit test: CRC32C (RFC 3720 test vectors; ISA-L, which common/crc32c.c
 * calls with its own inversion convention, against a bitwise reference
 * at every alignment; incremental use) and the chunk object
 * digests of s3-object (format, parse, refusing malformed values,
 * verifying ranges and finding the changed sub-block).
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "s3-digest.h"
#include "test-util.h"

/* The definition, one bit at a time: the reference for the rest. */
static uint32_t
crc32c_portable (uint32_t crc, const void *data, size_t len)
{
  const unsigned char *p = data;
  int k;

  crc = ~crc;
  while (len--) {
    crc ^= *p++;
    for (k = 0; k < 8; ++k)
      crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
  }
  return ~crc;
}

static void
test_vectors (void)
{
  unsigned char buf[32];
  int i;

  CHECK (crc32c (0, "123456789", 9) == 0xe3069283);
  CHECK (crc32c_portable (0, "123456789", 9) == 0xe3069283);
  CHECK (crc32c (0, "", 0) == 0);
  memset (buf, 0, 32);
  CHECK (crc32c (0, buf, 32) == 0x8a9136aa);
  memset (buf, 0xff, 32);
  CHECK (crc32c (0, buf, 32) == 0x62a8ab43);
  for (i = 0; i < 32; ++i)
    buf[i] = (unsigned char) i;
  CHECK (crc32c (0, buf, 32) == 0x46dd794e);
  for (i = 0; i < 32; ++i)
    buf[i] = (unsigned char) (31 - i);
  CHECK (crc32c (0, buf, 32) == 0x113fdb5c);
}

static void
test_paths (void)
{
  enum { N = 5000 };
  unsigned char *buf = malloc (N + 8);
  size_t i, a, len;

  srand (12345);
  for (i = 0; i < N + 8; ++i)
    buf[i] = (unsigned char) rand ();
  for (a = 0; a < 8; ++a)
    for (len = 0; len < N; len += 1 + len / 3) {
      uint32_t whole = crc32c (0, buf + a, len);
      CHECK (whole == crc32c_portable (0, buf + a, len));
      /* Continuing a CRC over a split buffer gives the same result. */
      CHECK (crc32c (crc32c (0, buf + a, len / 3), buf + a + len / 3,
                     len - len / 3) == whole);
    }
  free (buf);
}

static void
test_digest (void)
{
  const uint32_t B = 65536;
  const uint64_t len = 3 * B + 1000;
  unsigned char *obj = malloc (len);
  struct s3_digest d, p;
  uint32_t bad;
  char *s;
  uint64_t i;

  for (i = 0; i < len; ++i)
    obj[i] = (unsigned char) (i * 7 + 3);
  CHECK (s3_digest_compute (obj, len, B, &d) == 0);
  CHECK (d.nblocks == 4);
  s = s3_digest_format (&d);
  CHECK (strncmp (s, "v1,197608,65536,", 16) == 0);
  CHECK (strlen (s) == 16 + 32);
  CHECK (s3_digest_parse (s, &p) == 0);
  CHECK (p.len == d.len && p.block == d.block && p.nblocks == d.nblocks &&
         memcmp (p.crc, d.crc, sizeof d.crc[0] * d.nblocks) == 0);

  /* Whole object, one inner sub-block, the short last one. */
  CHECK (s3_digest_verify (&p, obj, 0, len, &bad) == 0);
  CHECK (s3_digest_verify (&p, obj + B, B, 2 * B, &bad) == 0);
  CHECK (s3_digest_verify (&p, obj + 3 * B, 3 * B, len, &bad) == 0);
  /* Ranges that do not fit: unaligned start, end inside a block, past
   * the object.
   */
  CHECK (s3_digest_verify (&p, obj + 1, 1, B, &bad) == -1 && bad == UINT32_MAX);
  CHECK (s3_digest_verify (&p, obj, 0, B + 5, &bad) == -1 && bad == UINT32_MAX);
  CHECK (s3_digest_verify (&p, obj, 0, len + 1, &bad) == -1);
  /* A changed byte is found in its sub-block. */
  obj[2 * B + 17] ^= 1;
  CHECK (s3_digest_verify (&p, obj, 0, len, &bad) == -1 && bad == 2);
  CHECK (s3_digest_verify (&p, obj + B, B, 2 * B, &bad) == 0);
  obj[2 * B + 17] ^= 1;

  /* Malformed values are refused. */
  {
    const char *badv[] = {
      "", "v2,1,65536,00000000", "v1,,65536,", "v1,1,0,00000000",
      "v1,1,65536,", "v1,1,65536,0000000", "v1,1,65536,000000000",
      "v1,1,65536,0000000g", "v1,-1,65536,", "v1,1,65536",
      "v1,99999999999,65536,00", "v1,1,99999999999,00000000",
    };
    size_t k;
    for (k = 0; k < sizeof badv / sizeof badv[0]; ++k)
      if (s3_digest_parse (badv[k], &p) == 0) {
        fprintf (stderr, "accepted malformed digest '%s'\n", badv[k]);
        test_failures++;
      }
  }
  /* An empty object has no sub-blocks. */
  CHECK (s3_digest_parse ("v1,0,65536,", &p) == 0 && p.nblocks == 0);
  /* Too many sub-blocks for the metadata budget. */
  CHECK (s3_digest_compute (obj, len, 1024, &d) == -1);
  free (s);
  free (obj);
}

/* CRCs of many pieces side by side equal the CRCs of each piece. */
static void
test_blocks (void)
{
  const size_t blocks[] = { 8, 24, 4096, 65536, 1000, 13 };
  unsigned char *buf = malloc (9 * 65536 + 100);
  uint32_t out[1200];
  size_t b, len, i;

  for (i = 0; i < 9 * 65536 + 100; ++i)
    buf[i] = (unsigned char) (i * 31 + (i >> 9));
  for (b = 0; b < sizeof blocks / sizeof blocks[0]; ++b)
    for (len = 0; len < 9 * 65536 + 100; len = len * 3 + 7) {
      size_t n = (len + blocks[b] - 1) / blocks[b];
      if (n > 1200)
        continue;
      crc32c_blocks (buf, len, blocks[b], out);
      for (i = 0; i < n; ++i) {
        size_t l = len - i * blocks[b] < blocks[b] ? len - i * blocks[b] : blocks[b];
        if (out[i] != crc32c_portable (0, buf + i * blocks[b], l)) {
          fprintf (stderr, "crc32c_blocks: block %zu len %zu piece %zu\n",
                   blocks[b], len, i);
          test_failures++;
          break;
        }
      }
    }
  free (buf);
}

/* The digests of a chunk PUT (through OpenSSL's EVP) match the known
 * answers, with and without the MD5; and the MD5 helpers.
 */
static void
test_compute_all (void)
{
  struct s3_digest d, d2;
  char sha[65], md5[25];
  unsigned char *big = malloc (300000);
  size_t i;

  CHECK (s3_digest_compute_all ("abc", 3, 65536, &d, sha, md5) == 0);
  CHECK (strcmp (sha, "ba7816bf8f01cfea414140de5dae2223"
                 "b00361a396177a9cb410ff61f20015ad") == 0);
  CHECK (strcmp (md5, "kAFQmDzST7DWlj99KOF/cg==") == 0);
  CHECK (d.nblocks == 1 && d.crc[0] == crc32c (0, "abc", 3));
  CHECK (s3_digest_compute_all ("", 0, 65536, &d, sha, md5) == 0);
  CHECK (strcmp (md5, "1B2M2Y8AsgTpgAmY7PhCfg==") == 0 && d.nblocks == 0);
  CHECK (strcmp (sha, "e3b0c44298fc1c149afbf4c8996fb924"
                 "27ae41e4649b934ca495991b7852b855") == 0);
  /* Chunk PUTs ask for no MD5. */
  memset (sha, 0, sizeof sha);
  CHECK (s3_digest_compute_all ("abc", 3, 65536, &d, sha, NULL) == 0);
  CHECK (strcmp (sha, "ba7816bf8f01cfea414140de5dae2223"
                 "b00361a396177a9cb410ff61f20015ad") == 0);
  memset (md5, 0, sizeof md5);
  CHECK (s3_content_md5 ("abc", 3, md5) == 0 &&
         strcmp (md5, "kAFQmDzST7DWlj99KOF/cg==") == 0);
  {
    unsigned char bin[16];
    static const unsigned char want[16] = {
      0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0,
      0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1, 0x7f, 0x72,
    };
    CHECK (s3_md5 ("abc", 3, bin) == 0 && memcmp (bin, want, 16) == 0);
  }
  for (i = 0; i < 300000; ++i)
    big[i] = (unsigned char) (i ^ (i >> 8));
  CHECK (s3_digest_compute_all (big, 300000, 65536, &d, sha, md5) == 0);
  CHECK (s3_digest_compute (big, 300000, 65536, &d2) == 0);
  CHECK (d.nblocks == 5 && d2.nblocks == 5 &&
         memcmp (d.crc, d2.crc, 5 * sizeof d.crc[0]) == 0);
  free (big);
}

int
main (void)
{
  test_vectors ();
  test_paths ();
  test_digest ();
  test_compute_all ();
  test_blocks ();
  TEST_EXIT ();
}
