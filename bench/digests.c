/* shardkit benchmark: the per-byte costs of s3-object's data path.
 * GPL-3.0-or-later.
 *
 *   - CRC32C of the 64 KiB sub-blocks of a 4 MiB chunk (what every chunk
 *     PUT computes and every GET checks): common/crc32c.c's
 *     crc32c_blocks against ISA-L's crc32_iscsi called directly once per
 *     sub-block.  This compared the crc32-instruction code crc32c.c held
 *     before with ISA-L, which won (bench/README.md); crc32c.c now calls
 *     ISA-L, and the pair shows that its wrapper costs nothing;
 *   - SHA-256 and MD5 of a 4 MiB chunk through OpenSSL's EVP interface
 *     (what a chunk PUT signs, and what checking the stored whole-object
 *     SHA-256 on a whole-chunk GET would cost).
 *
 * Each figure is the best of REPS passes over the same buffer (in the
 * cache hierarchy as far as 4 MiB fits), in GB/s and in CPU seconds per
 * GiB.  Results are checked against each other first.
 *
 *   make -C bench digests && bench/digests [REPS]
 *
 * Prints figures; never passes or fails on them.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <isa-l/crc.h>
#include <openssl/evp.h>

#include "crc32c.h"

#define CHUNK (4u << 20)
#define BLOCK (64u << 10)
#define NBLOCKS (CHUNK / BLOCK)

static unsigned char *buf;
static uint32_t crcs[NBLOCKS];

static double
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ISA-L's crc32_iscsi neither inverts the CRC on entry nor on exit:
 * crc32c (c, ...) (RFC 3720, the one in metadata) is ~crc32_iscsi (...,
 * ~c).
 */
static uint32_t
isal_crc32c (uint32_t crc, const void *data, size_t len)
{
  return ~crc32_iscsi ((unsigned char *) data, (int) len, ~crc);
}

static void
shardkit_blocks (void)
{
  crc32c_blocks (buf, CHUNK, BLOCK, crcs);
}

static void
isal_blocks (void)
{
  size_t i;

  for (i = 0; i < NBLOCKS; ++i)
    crcs[i] = isal_crc32c (0, buf + i * BLOCK, BLOCK);
}

static void
shardkit_one (void)
{
  crcs[0] = crc32c (0, buf, CHUNK);
}

static void
isal_one (void)
{
  crcs[0] = isal_crc32c (0, buf, CHUNK);
}

static void
evp (const char *name)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen;
  EVP_MD *m = EVP_MD_fetch (NULL, name, NULL);

  if (m == NULL || !EVP_Digest (buf, CHUNK, md, &mdlen, m, NULL)) {
    fprintf (stderr, "EVP_Digest %s failed\n", name);
    exit (EXIT_FAILURE);
  }
  EVP_MD_free (m);
  crcs[0] = md[0];
}
static void sha256 (void) { evp ("SHA256"); }
static void md5 (void) { evp ("MD5"); }

static void
report (const char *what, void (*f) (void), int reps)
{
  double best = 1e9;
  int i;

  for (i = 0; i < reps; ++i) {
    double t0 = now ();
    f ();
    double t = now () - t0;
    if (t < best)
      best = t;
  }
  printf ("%-48s %7.2f GB/s  %6.3f CPU s/GiB\n", what,
          CHUNK / best / 1e9, best * (1073741824.0 / CHUNK));
}

int
main (int argc, char *argv[])
{
  static const struct { const char *s; uint32_t crc; } vec[] = {
    { "123456789", 0xe3069283 }, { "", 0 },
  };
  int reps = argc > 1 ? atoi (argv[1]) : 50;
  uint32_t want[NBLOCKS];
  size_t i;

  buf = malloc (CHUNK);
  if (buf == NULL) {
    perror ("malloc");
    exit (EXIT_FAILURE);
  }
  for (i = 0; i < CHUNK; ++i)
    buf[i] = (unsigned char) (i * 2654435761u >> 13);

  /* The two CRCs must agree before their speed means anything. */
  for (i = 0; i < sizeof vec / sizeof vec[0]; ++i)
    if (isal_crc32c (0, vec[i].s, strlen (vec[i].s)) != vec[i].crc ||
        crc32c (0, vec[i].s, strlen (vec[i].s)) != vec[i].crc) {
      fprintf (stderr, "CRC32C test vector %zu: wrong\n", i);
      exit (EXIT_FAILURE);
    }
  if (isal_crc32c (isal_crc32c (0, buf, 1000), buf + 1000, 3000) !=
      crc32c (0, buf, 4000)) {
    fprintf (stderr, "ISA-L CRC32C does not continue like crc32c\n");
    exit (EXIT_FAILURE);
  }
  shardkit_blocks ();
  memcpy (want, crcs, sizeof want);
  isal_blocks ();
  if (memcmp (want, crcs, sizeof want) != 0) {
    fprintf (stderr, "ISA-L and crc32c.c differ\n");
    exit (EXIT_FAILURE);
  }

  printf ("4 MiB chunk, 64 KiB sub-blocks, best of %d (thread CPU time)\n",
          reps);
  report ("CRC32C per sub-block: crc32c_blocks", shardkit_blocks,
          reps);
  report ("CRC32C per sub-block: ISA-L crc32_iscsi", isal_blocks, reps);
  report ("CRC32C of the whole chunk: crc32c", shardkit_one, reps);
  report ("CRC32C of the whole chunk: ISA-L crc32_iscsi", isal_one, reps);
  report ("SHA-256 (OpenSSL EVP)", sha256, reps);
  report ("MD5 (OpenSSL EVP)", md5, reps);
  free (buf);
  return 0;
}
