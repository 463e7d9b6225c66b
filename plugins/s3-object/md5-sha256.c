/* shardkit s3-object: MD5 and SHA-256 together (see md5-sha256.h).
 * GPL-3.0-or-later.
 *
 * After every four MD5 steps comes one group of four SHA-256 rounds
 * (two SHA256RNDS2), so the two chains sit close together in the
 * instruction stream and the CPU runs them side by side.  The SHA-256
 * part follows Intel's "New Instructions Supporting the Secure Hash
 * Algorithm on Intel Architecture Processors" (2013): the state held as
 * ABEF and CDGH, the message schedule with SHA256MSG1/SHA256MSG2.
 */
#include <config.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "md5-sha256.h"

const uint32_t sha256_iv[8] = {
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

#include "md5-steps.h"

/* CPUID leaf 7, EBX bit 29.  Read directly: clang's
 * __builtin_cpu_supports does not know "sha".
 */
#define CPUID7_EBX_SHA (1u << 29)

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static bool have_sha;           /* CPUID is slow in a VM: asked once */

static void
probe (void)
{
  unsigned a, b, c, d;

  have_sha = __get_cpuid_count (7, 0, &a, &b, &c, &d) &&
    (b & CPUID7_EBX_SHA) &&
    __builtin_cpu_supports ("ssse3") &&
    __builtin_cpu_supports ("sse4.1");
}

bool
md5_sha256_supported (void)
{
  pthread_once (&probe_once, probe);
  return have_sha;
}

#define TARGET __attribute__ ((target ("sha,ssse3,sse4.1")))

static const uint32_t K256[64] __attribute__ ((aligned (16))) = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5,
  0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
  0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
  0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
  0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* One SHA-256 chain: state as ABEF/CDGH, the state at the start of the
 * block, and the four message-schedule vectors in use.
 */
struct sha_chain {
  __m128i abef, cdgh, abef0, cdgh0, w0, w1, w2, w3;
};

TARGET static inline void
sha_load (struct sha_chain *c, const uint32_t s[8])
{
  __m128i t = _mm_shuffle_epi32 (_mm_loadu_si128 ((const __m128i *) &s[0]),
                                 0xB1);                         /* CDAB */
  __m128i u = _mm_shuffle_epi32 (_mm_loadu_si128 ((const __m128i *) &s[4]),
                                 0x1B);                         /* EFGH */

  c->abef = _mm_alignr_epi8 (t, u, 8);
  c->cdgh = _mm_blend_epi16 (u, t, 0xF0);
}

TARGET static inline void
sha_store (const struct sha_chain *c, uint32_t s[8])
{
  __m128i t = _mm_shuffle_epi32 (c->abef, 0x1B);               /* FEBA */
  __m128i u = _mm_shuffle_epi32 (c->cdgh, 0xB1);               /* DCHG */

  _mm_storeu_si128 ((__m128i *) &s[0], _mm_blend_epi16 (t, u, 0xF0));
  _mm_storeu_si128 ((__m128i *) &s[4], _mm_alignr_epi8 (u, t, 8));
}

TARGET static inline void
sha_block_start (struct sha_chain *c, const unsigned char *p)
{
  const __m128i bswap = _mm_set_epi64x (0x0c0d0e0f08090a0bULL,
                                        0x0405060700010203ULL);

  c->w0 = _mm_shuffle_epi8 (_mm_loadu_si128 ((const __m128i *) p), bswap);
  c->w1 = _mm_shuffle_epi8 (_mm_loadu_si128 ((const __m128i *) (p + 16)),
                            bswap);
  c->w2 = _mm_shuffle_epi8 (_mm_loadu_si128 ((const __m128i *) (p + 32)),
                            bswap);
  c->w3 = _mm_shuffle_epi8 (_mm_loadu_si128 ((const __m128i *) (p + 48)),
                            bswap);
  c->abef0 = c->abef;
  c->cdgh0 = c->cdgh;
}

/* Schedule vector for group G + 4 from those of groups G..G+3. */
#define SHA_NEXT(wg, wg1, wg2, wg3)                                     \
  wg = _mm_sha256msg2_epu32 (_mm_add_epi32 (_mm_sha256msg1_epu32 (wg, wg1), \
                                            _mm_alignr_epi8 (wg3, wg2, 4)), \
                             wg3)

/* Rounds 4G..4G+3 (G a constant once inlined). */
TARGET static inline void
sha_group (struct sha_chain *c, int g)
{
  __m128i w = (g & 3) == 0 ? c->w0 : (g & 3) == 1 ? c->w1 :
    (g & 3) == 2 ? c->w2 : c->w3;
  __m128i mk = _mm_add_epi32 (w, _mm_load_si128 ((const __m128i *)
                                                 &K256[4 * g]));

  c->cdgh = _mm_sha256rnds2_epu32 (c->cdgh, c->abef, mk);
  c->abef = _mm_sha256rnds2_epu32 (c->abef, c->cdgh,
                                   _mm_shuffle_epi32 (mk, 0x0E));
  if (g + 4 < 16) {
    switch (g & 3) {
    case 0: SHA_NEXT (c->w0, c->w1, c->w2, c->w3); break;
    case 1: SHA_NEXT (c->w1, c->w2, c->w3, c->w0); break;
    case 2: SHA_NEXT (c->w2, c->w3, c->w0, c->w1); break;
    default: SHA_NEXT (c->w3, c->w0, c->w1, c->w2); break;
    }
  }
}

TARGET static inline void
sha_block_end (struct sha_chain *c)
{
  c->abef = _mm_add_epi32 (c->abef, c->abef0);
  c->cdgh = _mm_add_epi32 (c->cdgh, c->cdgh0);
}

/* The MD5 steps of ALL_STEPS, with one SHA-256 group after every fourth.
 * TICK counts the steps of the block; it is a constant at every step
 * once the straight-line code is compiled, and so is the group.
 */
#define STEP(tt, A, B, C, D, i, s, k)                                   \
  do {                                                                  \
    STEP1S (tt, A, B, C, D, x[i], s, k);                                \
    if ((++tick & 3) == 0)                                              \
      sha_group (&sc, tick / 4 - 1);                                    \
  } while (0)

TARGET void
md5_sha256_blocks (uint32_t md5[4], const unsigned char *md5_data,
                   uint32_t sha[8], const unsigned char *sha_data,
                   size_t nblocks)
{
  uint32_t a = md5[0], b = md5[1], c = md5[2], d = md5[3];
  uint32_t x[16];
  struct sha_chain sc;
  size_t blk;

  sha_load (&sc, sha);
  for (blk = 0; blk < nblocks; ++blk) {
    const uint32_t sa = a, sb = b, scc = c, sd = d;
    int tick = 0;

    memcpy (x, md5_data + 64 * blk, 64);        /* little-endian words */
    sha_block_start (&sc, sha_data + 64 * blk);
    ALL_STEPS
    sha_block_end (&sc);
    a += sa; b += sb; c += scc; d += sd;
  }
  sha_store (&sc, sha);
  md5[0] = a; md5[1] = b; md5[2] = c; md5[3] = d;
}

#undef STEP
#define STEP(tt, A, B, C, D, i, s, k)                                   \
  do {                                                                  \
    STEP1S (tt, A##0, B##0, C##0, D##0, x0[i], s, k);                   \
    STEP1S (tt, A##1, B##1, C##1, D##1, x1[i], s, k);                   \
    if ((++tick & 3) == 0) {                                            \
      sha_group (&sc0, tick / 4 - 1);                                   \
      sha_group (&sc1, tick / 4 - 1);                                   \
    }                                                                   \
  } while (0)

TARGET void
md5_sha256_blocks_x2 (uint32_t md5_0[4], const unsigned char *md5_data0,
                      uint32_t sha_0[8], const unsigned char *sha_data0,
                      uint32_t md5_1[4], const unsigned char *md5_data1,
                      uint32_t sha_1[8], const unsigned char *sha_data1,
                      size_t nblocks)
{
  uint32_t a0 = md5_0[0], b0 = md5_0[1], c0 = md5_0[2], d0 = md5_0[3];
  uint32_t a1 = md5_1[0], b1 = md5_1[1], c1 = md5_1[2], d1 = md5_1[3];
  uint32_t x0[16], x1[16];
  struct sha_chain sc0, sc1;
  size_t blk;

  sha_load (&sc0, sha_0);
  sha_load (&sc1, sha_1);
  for (blk = 0; blk < nblocks; ++blk) {
    const uint32_t sa0 = a0, sb0 = b0, sc0_ = c0, sd0 = d0;
    const uint32_t sa1 = a1, sb1 = b1, sc1_ = c1, sd1 = d1;
    int tick = 0;

    memcpy (x0, md5_data0 + 64 * blk, 64);
    memcpy (x1, md5_data1 + 64 * blk, 64);
    sha_block_start (&sc0, sha_data0 + 64 * blk);
    sha_block_start (&sc1, sha_data1 + 64 * blk);
    ALL_STEPS
    sha_block_end (&sc0);
    sha_block_end (&sc1);
    a0 += sa0; b0 += sb0; c0 += sc0_; d0 += sd0;
    a1 += sa1; b1 += sb1; c1 += sc1_; d1 += sd1;
  }
  sha_store (&sc0, sha_0);
  sha_store (&sc1, sha_1);
  md5_0[0] = a0; md5_0[1] = b0; md5_0[2] = c0; md5_0[3] = d0;
  md5_1[0] = a1; md5_1[1] = b1; md5_1[2] = c1; md5_1[3] = d1;
}

#else /* not x86-64 */

bool
md5_sha256_supported (void)
{
  return false;
}

void
md5_sha256_blocks (uint32_t md5[4], const unsigned char *md5_data,
                   uint32_t sha[8], const unsigned char *sha_data,
                   size_t nblocks)
{
  (void) md5; (void) md5_data; (void) sha; (void) sha_data; (void) nblocks;
  abort ();                     /* callers check md5_sha256_supported */
}

void
md5_sha256_blocks_x2 (uint32_t md5_0[4], const unsigned char *md5_data0,
                      uint32_t sha_0[8], const unsigned char *sha_data0,
                      uint32_t md5_1[4], const unsigned char *md5_data1,
                      uint32_t sha_1[8], const unsigned char *sha_data1,
                      size_t nblocks)
{
  (void) md5_0; (void) md5_data0; (void) sha_0; (void) sha_data0;
  (void) md5_1; (void) md5_data1; (void) sha_1; (void) sha_data1;
  (void) nblocks;
  abort ();                     /* callers check md5_sha256_supported */
}

#endif
