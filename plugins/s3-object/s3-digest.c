/* shardkit s3-object: chunk object digests (see s3-digest.h).
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crc32c.h"
#include "s3-digest.h"

/* Fill in the shape of D for LEN bytes in sub-blocks of BLOCK (not the
 * checksums).  -1 with EINVAL if there would be too many sub-blocks.
 */
static int
digest_shape (uint64_t len, uint32_t block, struct s3_digest *d)
{
  if (block == 0 || (len + block - 1) / block > S3_DIGEST_MAX_BLOCKS) {
    errno = EINVAL;
    return -1;
  }
  d->len = len;
  d->block = block;
  d->nblocks = (uint32_t) ((len + block - 1) / block);
  return 0;
}

int
s3_digest_compute (const void *data, uint64_t len, uint32_t block,
                   struct s3_digest *d)
{
  if (digest_shape (len, block, d) == -1)
    return -1;
  crc32c_blocks (data, (size_t) len, block, d->crc);
  return 0;
}

/* One digest of LEN bytes at DATA through EVP (SHA-NI, AVX2 or
 * whatever OpenSSL finds on the CPU).  Its implicit fetch per call is
 * nothing beside hashing a chunk.
 */
static int
evp_digest (const EVP_MD *md, const void *data, size_t len,
            unsigned char *out, unsigned outlen)
{
  unsigned got = 0;

  if (EVP_Digest (data, len, out, &got, md, NULL) != 1 || got != outlen) {
    errno = EIO;
    return -1;
  }
  return 0;
}

int
s3_md5 (const void *data, size_t len, unsigned char out[16])
{
  return evp_digest (EVP_md5 (), data, len, out, 16);
}

int
s3_digest_compute_all (const void *data, uint64_t len, uint32_t block,
                       struct s3_digest *d, char sha256_hex[65],
                       char md5_base64[25])
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = data;
  unsigned char shabin[32];
  unsigned got = 0;
  EVP_MD_CTX *ctx;
  uint64_t off;
  uint32_t i;
  int ok;

  if (digest_shape (len, block, d) == -1)
    return -1;

  /* One pass: each sub-block's CRC32C, then its bytes into the SHA-256
   * while they are still in the cache, rather than two passes over the
   * whole chunk from memory.
   */
  ctx = EVP_MD_CTX_new ();
  if (ctx == NULL) {
    errno = ENOMEM;
    return -1;
  }
  ok = EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) == 1;
  for (off = 0, i = 0; ok && off < len; off += block, ++i) {
    size_t n = len - off < block ? (size_t) (len - off) : block;
    d->crc[i] = crc32c (0, p + off, n);
    ok = EVP_DigestUpdate (ctx, p + off, n) == 1;
  }
  ok = ok && EVP_DigestFinal_ex (ctx, shabin, &got) == 1 && got == 32;
  EVP_MD_CTX_free (ctx);
  if (!ok) {
    errno = EIO;
    return -1;
  }
  for (i = 0; i < 32; ++i) {
    sha256_hex[2*i] = hex[shabin[i] >> 4];
    sha256_hex[2*i+1] = hex[shabin[i] & 15];
  }
  sha256_hex[64] = '\0';
  if (md5_base64)
    return s3_content_md5 (data, (size_t) len, md5_base64);
  return 0;
}

int
s3_content_md5 (const void *data, size_t len, char md5_base64[25])
{
  unsigned char md5[16];

  if (s3_md5 (data, len, md5) == -1)
    return -1;
  EVP_EncodeBlock ((unsigned char *) md5_base64, md5, 16);
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

  *bad = UINT32_MAX;
  if (first % d->block != 0 || end > d->len || first > end ||
      (end % d->block != 0 && end != d->len))
    return -1;
  {
    uint32_t got[S3_DIGEST_MAX_BLOCKS];
    uint32_t i, first_block = (uint32_t) (first / d->block);
    uint32_t n = (uint32_t) ((end - first + d->block - 1) / d->block);

    crc32c_blocks (p, (size_t) (end - first), d->block, got);
    for (i = 0; i < n; ++i)
      if (got[i] != d->crc[first_block + i]) {
        *bad = first_block + i;
        return -1;
      }
  }
  return 0;
}

int
s3_etag_check (const void *body, size_t len, const char *etag,
               const char **why)
{
  unsigned char md5[16];
  char hex[33];
  size_t i;

  if (strlen (etag) != 32 || strspn (etag, "0123456789abcdef") != 32)
    return 0;
  if (s3_md5 (body, len, md5) == -1) {
    *why = "cannot compute the MD5 of the body";
    return -1;
  }
  for (i = 0; i < 16; ++i)
    sprintf (hex + 2*i, "%02x", md5[i]);
  if (strcmp (hex, etag) != 0) {
    *why = "the body does not match its ETag (MD5)";
    return -1;
  }
  return 0;
}
