/* shardkit s3-object: MD5 of up to 16 messages at once (see md5-lanes.h).
 * GPL-3.0-or-later.
 *
 * The steps are those of RFC 1321, on 16 lanes: lane l of the vectors
 * belongs to message l.  Each round function is one vpternlogd, each
 * rotation one vprold (AVX-512VL on 256-bit registers).
 */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* MD5_Update is deprecated for whole digests (EVP does those), but it
 * is the one way to advance a bare MD5 state with OpenSSL's assembly.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/md5.h>

#include "md5-lanes.h"
#include "md5-steps.h"

const uint32_t md5_iv[4] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476 };

size_t
md5_padding (const unsigned char *tail, uint64_t total, unsigned char out[128])
{
  size_t r = (size_t) (total % 64);
  size_t nblocks = r + 1 + 8 <= 64 ? 1 : 2;
  uint64_t bits = total * 8;
  size_t i;

  memset (out, 0, 128);
  memcpy (out, tail, r);
  out[r] = 0x80;
  for (i = 0; i < 8; ++i)
    out[nblocks * 64 - 8 + i] = (unsigned char) (bits >> (8 * i));
  return nblocks;
}

void
md5_blocks_scalar (uint32_t state[4], const unsigned char *data,
                   size_t nblocks)
{
  MD5_CTX ctx;

  /* A context holding STATE with no partial block buffered: MD5_Update
   * then runs the block function straight over DATA.
   */
  memset (&ctx, 0, sizeof ctx);
  ctx.A = state[0];
  ctx.B = state[1];
  ctx.C = state[2];
  ctx.D = state[3];
  MD5_Update (&ctx, data, nblocks * 64);
  state[0] = ctx.A;
  state[1] = ctx.B;
  state[2] = ctx.C;
  state[3] = ctx.D;
}

void
md5_state_bytes (const uint32_t state[4], unsigned char out[16])
{
  size_t i, j;

  for (i = 0; i < 4; ++i)
    for (j = 0; j < 4; ++j)
      out[4 * i + j] = (unsigned char) (state[i] >> (8 * j));
}

/* Two messages in plain C, their steps interleaved: the two chains
 * run side by side in the integer units, where a step has a shorter
 * latency than in the vector units of some CPUs.  Words are read in
 * host order: only used beside the lanes (x86-64, little-endian).
 */
#define STEP(tt, A, B, C, D, i, s, k)                                   \
  do {                                                                  \
    STEP1S (tt, A##0, B##0, C##0, D##0, x0[i], s, k);                   \
    STEP1S (tt, A##1, B##1, C##1, D##1, x1[i], s, k);                   \
  } while (0)

void
md5_blocks_scalar_x2 (uint32_t state0[4], uint32_t state1[4],
                      const unsigned char *p0, const unsigned char *p1,
                      size_t nblocks)
{
  uint32_t a0 = state0[0], b0 = state0[1], c0 = state0[2], d0 = state0[3];
  uint32_t a1 = state1[0], b1 = state1[1], c1 = state1[2], d1 = state1[3];
  uint32_t x0[16], x1[16];
  size_t blk;

  for (blk = 0; blk < nblocks; ++blk) {
    const uint32_t sa0 = a0, sb0 = b0, sc0 = c0, sd0 = d0;
    const uint32_t sa1 = a1, sb1 = b1, sc1 = c1, sd1 = d1;

    memcpy (x0, p0 + 64 * blk, 64);   /* little-endian words */
    memcpy (x1, p1 + 64 * blk, 64);
    ALL_STEPS
    a0 += sa0; b0 += sb0; c0 += sc0; d0 += sd0;
    a1 += sa1; b1 += sb1; c1 += sc1; d1 += sd1;
  }
  state0[0] = a0; state0[1] = b0; state0[2] = c0; state0[3] = d0;
  state1[0] = a1; state1[1] = b1; state1[2] = c1; state1[3] = d1;
}

#undef STEP

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

bool
md5_lanes_supported (void)
{
  return __builtin_cpu_supports ("avx2") &&
    __builtin_cpu_supports ("avx512f") &&
    __builtin_cpu_supports ("avx512vl");
}

#define TARGET __attribute__ ((target ("avx2,avx512f,avx512vl")))


/* The 16 lanes are two groups of 8 in 256-bit registers, stepped side
 * by side: two independent dependency chains per step (one 512-bit
 * register would be one chain, and 512-bit operations have a longer
 * latency on some CPUs, which is what bounds MD5).
 */
struct group {
  __m256i a, b, c, d;
};

#define STEP1(tt, a, b, c, d, w, s, k)                                  \
  do {                                                                  \
    a = _mm256_add_epi32 (a, _mm256_add_epi32 (w, _mm256_set1_epi32 ((int) (k)))); \
    a = _mm256_add_epi32 (a, _mm256_ternarylogic_epi32 (b, c, d, tt));  \
    a = _mm256_add_epi32 (b, _mm256_rol_epi32 (a, s));                  \
  } while (0)

#define STEP(tt, A, B, C, D, i, s, k)                                   \
  do {                                                                  \
    STEP1 (tt, g0.A, g0.B, g0.C, g0.D, x0[i], s, k);                    \
    STEP1 (tt, g1.A, g1.B, g1.C, g1.D, x1[i], s, k);                    \
  } while (0)

/* R[l] holds words 0-7 of lane l's block, R[8+l] words 8-15; make W[i]
 * hold word i of the 8 lanes (two 8 x 8 transposes of 32-bit words).
 */
TARGET static inline void
transpose8 (const __m256i *r, __m256i *w)
{
  __m256i t[8], u[8];
  int i;

  for (i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32 (r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32 (r[i], r[i + 1]);
  }
  /* u[4h+k] holds, in its 128-bit half q, word 4q+k of rows 4h..4h+3. */
  for (i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64 (t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64 (t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64 (t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64 (t[i + 1], t[i + 3]);
  }
  for (i = 0; i < 4; ++i) {
    w[i] = _mm256_permute2x128_si256 (u[i], u[4 + i], 0x20);
    w[4 + i] = _mm256_permute2x128_si256 (u[i], u[4 + i], 0x31);
  }
}

TARGET static void
load_words (const unsigned char *const *data, size_t off, __m256i x[16])
{
  __m256i lo[8], hi[8];
  int l;

  for (l = 0; l < 8; ++l) {
    lo[l] = _mm256_loadu_si256 ((const void *) (data[l] + off));
    hi[l] = _mm256_loadu_si256 ((const void *) (data[l] + off + 32));
  }
  transpose8 (lo, x);
  transpose8 (hi, x + 8);
}

TARGET static void
load_group (uint32_t state[][4], struct group *g)
{
  const __m256i idx = _mm256_setr_epi32 (0, 4, 8, 12, 16, 20, 24, 28);
  const int *base = (const int *) &state[0][0];

  g->a = _mm256_i32gather_epi32 (base, idx, 4);
  g->b = _mm256_i32gather_epi32 (base + 1, idx, 4);
  g->c = _mm256_i32gather_epi32 (base + 2, idx, 4);
  g->d = _mm256_i32gather_epi32 (base + 3, idx, 4);
}

TARGET static void
store_group (const struct group *g, uint32_t state[][4])
{
  uint32_t v[4][8];
  int l, i;

  _mm256_storeu_si256 ((void *) v[0], g->a);
  _mm256_storeu_si256 ((void *) v[1], g->b);
  _mm256_storeu_si256 ((void *) v[2], g->c);
  _mm256_storeu_si256 ((void *) v[3], g->d);
  for (l = 0; l < 8; ++l)
    for (i = 0; i < 4; ++i)
      state[l][i] = v[i][l];
}

/* The end of a block: add the state from before it. */
TARGET static inline void
add_group (struct group *g, const struct group *before)
{
  g->a = _mm256_add_epi32 (g->a, before->a);
  g->b = _mm256_add_epi32 (g->b, before->b);
  g->c = _mm256_add_epi32 (g->c, before->c);
  g->d = _mm256_add_epi32 (g->d, before->d);
}

TARGET void
md5_lanes_blocks (uint32_t state[MD5_LANES][4],
                  const unsigned char *const data[MD5_LANES], size_t nblocks)
{
  struct group g0, g1, s0, s1;
  __m256i x0[16], x1[16];
  size_t blk;

  load_group (state, &g0);
  load_group (state + 8, &g1);
  for (blk = 0; blk < nblocks; ++blk) {
    load_words (data, 64 * blk, x0);
    load_words (data + 8, 64 * blk, x1);
    s0 = g0;
    s1 = g1;

    ALL_STEPS

    add_group (&g0, &s0);
    add_group (&g1, &s1);
  }
  store_group (&g0, state);
  store_group (&g1, state + 8);
}

/* Lanes 0-7 only, when no more are in use: half the work per block. */
#undef STEP
#define STEP(tt, A, B, C, D, i, s, k)                                   \
  STEP1 (tt, g0.A, g0.B, g0.C, g0.D, x0[i], s, k)

TARGET void
md5_lanes_blocks_8 (uint32_t state[MD5_LANES][4],
                    const unsigned char *const data[MD5_LANES],
                    size_t nblocks)
{
  struct group g0, s0;
  __m256i x0[16];
  size_t blk;

  load_group (state, &g0);
  for (blk = 0; blk < nblocks; ++blk) {
    load_words (data, 64 * blk, x0);
    s0 = g0;
    ALL_STEPS
    add_group (&g0, &s0);
  }
  store_group (&g0, state);
}

#else  /* not x86-64 with GCC or Clang */

bool
md5_lanes_supported (void)
{
  return false;
}

void
md5_lanes_blocks (uint32_t state[MD5_LANES][4],
                  const unsigned char *const data[MD5_LANES], size_t nblocks)
{
  (void) state; (void) data; (void) nblocks;
  abort ();                     /* callers check md5_lanes_supported */
}

void
md5_lanes_blocks_8 (uint32_t state[MD5_LANES][4],
                    const unsigned char *const data[MD5_LANES],
                    size_t nblocks)
{
  (void) state; (void) data; (void) nblocks;
  abort ();
}

#endif
