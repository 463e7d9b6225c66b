/* shardkit s3-object: chunk object digests (see s3-digest.h).
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "s3-digest.h"

int
s3_digest_compute (const void *data, uint64_t len, uint32_t block,
                   struct s3_digest *d)
{
  const unsigned char *p = data;
  uint64_t off;
  uint32_t i = 0;

  if (block == 0 || (len + block - 1) / block > S3_DIGEST_MAX_BLOCKS) {
    errno = EINVAL;
    return -1;
  }
  d->len = len;
  d->block = block;
  for (off = 0; off < len; off += block) {
    uint64_t n = len - off < block ? len - off : block;
    d->crc[i++] = crc32c (0, p + off, (size_t) n);
  }
  d->nblocks = i;
  return 0;
}

char *
s3_digest_format (const struct s3_digest *d)
{
  char *s = malloc (64 + 8 * (size_t) d->nblocks + 1);
  size_t j;
  uint32_t i;

  if (s == NULL)
    return NULL;
  j = (size_t) sprintf (s, "v1,%" PRIu64 ",%" PRIu32 ",", d->len, d->block);
  for (i = 0; i < d->nblocks; ++i)
    j += (size_t) sprintf (s + j, "%08" PRIx32, d->crc[i]);
  return s;
}

static int
hexval (char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int
s3_digest_parse (const char *s, struct s3_digest *d)
{
  uint64_t len, block;
  char *end;
  size_t hexlen, i;
  uint32_t n;

  if (strncmp (s, "v1,", 3) != 0)
    return -1;
  s += 3;
  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  len = strtoull (s, &end, 10);
  if (errno || *end != ',')
    return -1;
  s = end + 1;
  if (*s < '0' || *s > '9')
    return -1;
  block = strtoull (s, &end, 10);
  if (errno || *end != ',' || block == 0 || block > UINT32_MAX)
    return -1;
  s = end + 1;
  if ((len + block - 1) / block > S3_DIGEST_MAX_BLOCKS)
    return -1;
  n = (uint32_t) ((len + block - 1) / block);
  hexlen = strlen (s);
  if (hexlen != 8 * (size_t) n)
    return -1;
  d->len = len;
  d->block = (uint32_t) block;
  d->nblocks = n;
  for (i = 0; i < n; ++i) {
    uint32_t v = 0;
    size_t k;
    for (k = 0; k < 8; ++k) {
      int h = hexval (s[8*i + k]);
      if (h < 0)
        return -1;
      v = v << 4 | (uint32_t) h;
    }
    d->crc[i] = v;
  }
  return 0;
}

int
s3_digest_verify (const struct s3_digest *d, const void *data,
                  uint64_t first, uint64_t end, uint32_t *bad)
{
  const unsigned char *p = data;
  uint64_t off;

  *bad = UINT32_MAX;
  if (first % d->block != 0 || end > d->len || first > end ||
      (end % d->block != 0 && end != d->len))
    return -1;
  for (off = first; off < end; off += d->block) {
    uint64_t n = end - off < d->block ? end - off : d->block;
    uint32_t i = (uint32_t) (off / d->block);
    if (crc32c (0, p + (off - first), (size_t) n) != d->crc[i]) {
      *bad = i;
      return -1;
    }
  }
  return 0;
}
