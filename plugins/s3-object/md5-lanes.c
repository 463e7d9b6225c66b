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

/* The round functions, named by their vpternlogd truth tables of
 * (b, c, d).
 */
#define F_TT 0xca               /* b ? c : d */
#define G_TT 0xe4               /* d ? b : c */
#define H_TT 0x96               /* b ^ c ^ d */
#define I_TT 0x39               /* c ^ (b | ~d) */

/* The 64 steps of one block (RFC 1321), for a STEP macro. */
#define ALL_STEPS \
  STEP (F_TT, a, b, c, d,  0,  7, 0xd76aa478); \
  STEP (F_TT, d, a, b, c,  1, 12, 0xe8c7b756); \
  STEP (F_TT, c, d, a, b,  2, 17, 0x242070db); \
  STEP (F_TT, b, c, d, a,  3, 22, 0xc1bdceee); \
  STEP (F_TT, a, b, c, d,  4,  7, 0xf57c0faf); \
  STEP (F_TT, d, a, b, c,  5, 12, 0x4787c62a); \
  STEP (F_TT, c, d, a, b,  6, 17, 0xa8304613); \
  STEP (F_TT, b, c, d, a,  7, 22, 0xfd469501); \
  STEP (F_TT, a, b, c, d,  8,  7, 0x698098d8); \
  STEP (F_TT, d, a, b, c,  9, 12, 0x8b44f7af); \
  STEP (F_TT, c, d, a, b, 10, 17, 0xffff5bb1); \
  STEP (F_TT, b, c, d, a, 11, 22, 0x895cd7be); \
  STEP (F_TT, a, b, c, d, 12,  7, 0x6b901122); \
  STEP (F_TT, d, a, b, c, 13, 12, 0xfd987193); \
  STEP (F_TT, c, d, a, b, 14, 17, 0xa679438e); \
  STEP (F_TT, b, c, d, a, 15, 22, 0x49b40821); \
  STEP (G_TT, a, b, c, d,  1,  5, 0xf61e2562); \
  STEP (G_TT, d, a, b, c,  6,  9, 0xc040b340); \
  STEP (G_TT, c, d, a, b, 11, 14, 0x265e5a51); \
  STEP (G_TT, b, c, d, a,  0, 20, 0xe9b6c7aa); \
  STEP (G_TT, a, b, c, d,  5,  5, 0xd62f105d); \
  STEP (G_TT, d, a, b, c, 10,  9, 0x02441453); \
  STEP (G_TT, c, d, a, b, 15, 14, 0xd8a1e681); \
  STEP (G_TT, b, c, d, a,  4, 20, 0xe7d3fbc8); \
  STEP (G_TT, a, b, c, d,  9,  5, 0x21e1cde6); \
  STEP (G_TT, d, a, b, c, 14,  9, 0xc33707d6); \
  STEP (G_TT, c, d, a, b,  3, 14, 0xf4d50d87); \
  STEP (G_TT, b, c, d, a,  8, 20, 0x455a14ed); \
  STEP (G_TT, a, b, c, d, 13,  5, 0xa9e3e905); \
  STEP (G_TT, d, a, b, c,  2,  9, 0xfcefa3f8); \
  STEP (G_TT, c, d, a, b,  7, 14, 0x676f02d9); \
  STEP (G_TT, b, c, d, a, 12, 20, 0x8d2a4c8a); \
  STEP (H_TT, a, b, c, d,  5,  4, 0xfffa3942); \
  STEP (H_TT, d, a, b, c,  8, 11, 0x8771f681); \
  STEP (H_TT, c, d, a, b, 11, 16, 0x6d9d6122); \
  STEP (H_TT, b, c, d, a, 14, 23, 0xfde5380c); \
  STEP (H_TT, a, b, c, d,  1,  4, 0xa4beea44); \
  STEP (H_TT, d, a, b, c,  4, 11, 0x4bdecfa9); \
  STEP (H_TT, c, d, a, b,  7, 16, 0xf6bb4b60); \
  STEP (H_TT, b, c, d, a, 10, 23, 0xbebfbc70); \
  STEP (H_TT, a, b, c, d, 13,  4, 0x289b7ec6); \
  STEP (H_TT, d, a, b, c,  0, 11, 0xeaa127fa); \
  STEP (H_TT, c, d, a, b,  3, 16, 0xd4ef3085); \
  STEP (H_TT, b, c, d, a,  6, 23, 0x04881d05); \
  STEP (H_TT, a, b, c, d,  9,  4, 0xd9d4d039); \
  STEP (H_TT, d, a, b, c, 12, 11, 0xe6db99e5); \
  STEP (H_TT, c, d, a, b, 15, 16, 0x1fa27cf8); \
  STEP (H_TT, b, c, d, a,  2, 23, 0xc4ac5665); \
  STEP (I_TT, a, b, c, d,  0,  6, 0xf4292244); \
  STEP (I_TT, d, a, b, c,  7, 10, 0x432aff97); \
  STEP (I_TT, c, d, a, b, 14, 15, 0xab9423a7); \
  STEP (I_TT, b, c, d, a,  5, 21, 0xfc93a039); \
  STEP (I_TT, a, b, c, d, 12,  6, 0x655b59c3); \
  STEP (I_TT, d, a, b, c,  3, 10, 0x8f0ccc92); \
  STEP (I_TT, c, d, a, b, 10, 15, 0xffeff47d); \
  STEP (I_TT, b, c, d, a,  1, 21, 0x85845dd1); \
  STEP (I_TT, a, b, c, d,  8,  6, 0x6fa87e4f); \
  STEP (I_TT, d, a, b, c, 15, 10, 0xfe2ce6e0); \
  STEP (I_TT, c, d, a, b,  6, 15, 0xa3014314); \
  STEP (I_TT, b, c, d, a, 13, 21, 0x4e0811a1); \
  STEP (I_TT, a, b, c, d,  4,  6, 0xf7537e82); \
  STEP (I_TT, d, a, b, c, 11, 10, 0xbd3af235); \
  STEP (I_TT, c, d, a, b,  2, 15, 0x2ad7d2bb); \
  STEP (I_TT, b, c, d, a,  9, 21, 0xeb86d391);

/* Two messages in plain C, their steps interleaved: the two chains
 * run side by side in the integer units, where a step has a shorter
 * latency than in the vector units of some CPUs.  Words are read in
 * host order: only used beside the lanes (x86-64, little-endian).
 */
#define SCALAR_F(tt, b, c, d)                                           \
  ((tt) == F_TT ? ((d) ^ ((b) & ((c) ^ (d)))) :                         \
   (tt) == G_TT ? ((c) ^ ((d) & ((b) ^ (c)))) :                         \
   (tt) == H_TT ? ((b) ^ (c) ^ (d)) :                                   \
   ((c) ^ ((b) | ~(d))))
#define ROTL(x, s) (((x) << (s)) | ((x) >> (32 - (s))))
#define STEP1S(tt, a, b, c, d, w, s, k)                                 \
  do {                                                                  \
    a += SCALAR_F (tt, b, c, d) + (w) + (uint32_t) (k);                 \
    a = ROTL (a, s) + b;                                                \
  } while (0)
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
