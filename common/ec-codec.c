/* shardkit: Reed-Solomon erasure coding of chunks (through ISA-L).
 * GPL-3.0-or-later.
 *
 * See ec-codec.h.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/erasure_code.h>

#include "cleanup.h"
#include "ec-codec.h"

#define EC_ALIGN 64

struct ec_codec {
  unsigned k, m;
  /* (K + M) x K coding matrix: identity on top, Cauchy rows below. */
  unsigned char matrix[(EC_MAX_K + EC_MAX_M) * EC_MAX_K];
  /* ISA-L's expanded tables for the M parity rows. */
  unsigned char encode_tables[32 * EC_MAX_K * EC_MAX_M];
};

struct ec_codec *
ec_codec_new (unsigned k, unsigned m)
{
  struct ec_codec *ec;

  if (k < 1 || k > EC_MAX_K || m < 1 || m > EC_MAX_M) {
    errno = EINVAL;
    return NULL;
  }
  ec = calloc (1, sizeof *ec);
  if (ec == NULL)
    return NULL;
  ec->k = k;
  ec->m = m;
  gf_gen_cauchy1_matrix (ec->matrix, k + m, k);
  ec_init_tables (k, m, &ec->matrix[k * k], ec->encode_tables);
  return ec;
}

void
ec_codec_free (struct ec_codec *ec)
{
  free (ec);
}

unsigned
ec_codec_k (const struct ec_codec *ec)
{
  return ec->k;
}

unsigned
ec_codec_m (const struct ec_codec *ec)
{
  return ec->m;
}

size_t
ec_fragment_len (unsigned k, size_t len)
{
  size_t n = (len + k - 1) / k;
  return (n + EC_ALIGN - 1) / EC_ALIGN * EC_ALIGN;
}

/* Copy CHUNK into the K data fragments, zero-padding the tail. */
static void
split (const struct ec_codec *ec, const void *chunk, size_t len,
       uint8_t **frags, size_t frag_len)
{
  const uint8_t *p = chunk;
  unsigned i;

  for (i = 0; i < ec->k; ++i) {
    size_t start = i * frag_len;
    size_t n = start >= len ? 0 : len - start < frag_len ? len - start
      : frag_len;
    if (n)
      memcpy (frags[i], p + start, n);
    memset (frags[i] + n, 0, frag_len - n);
  }
}

int
ec_encode (const struct ec_codec *ec, const void *chunk, size_t len,
           uint8_t **frags)
{
  size_t frag_len = ec_fragment_len (ec->k, len);

  split (ec, chunk, len, frags, frag_len);
  ec_encode_data ((int) frag_len, ec->k, ec->m,
                  (unsigned char *) ec->encode_tables, frags, &frags[ec->k]);
  return 0;
}

void
ec_join (const struct ec_codec *ec, uint8_t *const *frags, void *chunk,
         size_t len)
{
  size_t frag_len = ec_fragment_len (ec->k, len);
  uint8_t *p = chunk;
  unsigned i;

  for (i = 0; i < ec->k; ++i) {
    size_t start = i * frag_len;
    if (start >= len)
      break;
    memcpy (p + start, frags[i], len - start < frag_len ? len - start
            : frag_len);
  }
}

int
ec_rebuild (const struct ec_codec *ec, uint8_t **frags, const bool *present,
            size_t frag_len)
{
  const unsigned k = ec->k, n = ec->k + ec->m;
  unsigned survivors[EC_MAX_K], missing_data[EC_MAX_K];
  unsigned nsurv = 0, nmissing_data = 0, i, j;
  bool any_parity_missing = false;
  unsigned char sub[EC_MAX_K * EC_MAX_K], inv[EC_MAX_K * EC_MAX_K];
  unsigned char rows[EC_MAX_K * EC_MAX_K];
  uint8_t *src[EC_MAX_K], *dst[EC_MAX_K];
  CLEANUP_FREE unsigned char *tables = NULL;

  if (frag_len == 0 || frag_len % EC_ALIGN) {
    errno = EINVAL;
    return -1;
  }
  for (i = 0; i < n && nsurv < k; ++i)
    if (present[i])
      survivors[nsurv++] = i;
  if (nsurv < k) {
    errno = EIO;
    return -1;
  }
  for (i = 0; i < k; ++i)
    if (!present[i])
      missing_data[nmissing_data++] = i;
  for (i = k; i < n; ++i)
    if (!present[i])
      any_parity_missing = true;

  if (nmissing_data) {
    /* The survivors' rows of the coding matrix map the data to them;
     * its inverse maps them back.  Row d of the inverse rebuilds data
     * fragment d.
     */
    for (i = 0; i < k; ++i)
      memcpy (&sub[i * k], &ec->matrix[survivors[i] * k], k);
    if (gf_invert_matrix (sub, inv, k) != 0) {
      /* Cannot happen with a Cauchy matrix: say so rather than guess. */
      errno = EIO;
      return -1;
    }
    for (i = 0; i < nmissing_data; ++i) {
      memcpy (&rows[i * k], &inv[missing_data[i] * k], k);
      dst[i] = frags[missing_data[i]];
    }
    for (i = 0; i < k; ++i)
      src[i] = frags[survivors[i]];
    tables = malloc (32 * k * nmissing_data);
    if (tables == NULL)
      return -1;
    ec_init_tables (k, nmissing_data, rows, tables);
    ec_encode_data ((int) frag_len, k, nmissing_data, tables, src, dst);
  }

  if (any_parity_missing) {
    /* With every data fragment back, the missing parity is encoded
     * again from its own row.
     */
    unsigned np = 0;
    CLEANUP_FREE unsigned char *ptables = NULL;

    for (j = k; j < n; ++j)
      if (!present[j]) {
        memcpy (&rows[np * k], &ec->matrix[j * k], k);
        dst[np++] = frags[j];
      }
    ptables = malloc (32 * k * np);
    if (ptables == NULL)
      return -1;
    ec_init_tables (k, np, rows, ptables);
    ec_encode_data ((int) frag_len, k, np, ptables, frags, dst);
  }
  return 0;
}
