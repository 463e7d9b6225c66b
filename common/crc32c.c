/* shardkit: CRC32C.
 * GPL-3.0-or-later.
 *
 * Every byte s3-object reads from or writes to the object store goes
 * through this, so it uses the SSE4.2 crc32 instruction where the CPU has
 * it (about 20 GB/s), and a slice-by-8 table otherwise.
 */
#include <config.h>

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "crc32c.h"

#define POLY 0x82f63b78u        /* reflected Castagnoli polynomial */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void
make_table (void)
{
  uint32_t i, k, c;

  for (i = 0; i < 256; ++i) {
    c = i;
    for (k = 0; k < 8; ++k)
      c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
    table[0][i] = c;
  }
  for (i = 0; i < 256; ++i)
    for (k = 1; k < 8; ++k)
      table[k][i] = (table[k-1][i] >> 8) ^ table[0][table[k-1][i] & 0xff];
}

static uint32_t
crc32c_sw (uint32_t crc, const unsigned char *p, size_t len)
{
  pthread_once (&table_once, make_table);
  while (len && ((uintptr_t) p & 7)) {
    crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    len--;
  }
  while (len >= 8) {
    uint64_t w;
    memcpy (&w, p, 8);
    w ^= crc;
    crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
      table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
      table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
      table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
    p += 8;
    len -= 8;
  }
  while (len--)
    crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_HW_CRC 1

__attribute__ ((target ("sse4.2")))
static uint32_t
crc32c_hw (uint32_t crc, const unsigned char *p, size_t len)
{
  uint64_t c = crc;

  while (len && ((uintptr_t) p & 7)) {
    c = __builtin_ia32_crc32qi ((uint32_t) c, *p++);
    len--;
  }
  while (len >= 8) {
    uint64_t w;
    memcpy (&w, p, 8);
    c = __builtin_ia32_crc32di (c, w);
    p += 8;
    len -= 8;
  }
  while (len--)
    c = __builtin_ia32_crc32qi ((uint32_t) c, *p++);
  return (uint32_t) c;
}
/* Four pieces of LEN bytes (a multiple of 8) at P, P+STRIDE, ... in
 * lockstep: four independent dependency chains.
 */
__attribute__ ((target ("sse4.2")))
static void
crc32c_hw_x4 (const unsigned char *p, size_t stride, size_t len,
              uint32_t out[4])
{
  uint64_t c0 = ~0u, c1 = ~0u, c2 = ~0u, c3 = ~0u;
  size_t i;

  for (i = 0; i < len; i += 8) {
    uint64_t w0, w1, w2, w3;
    memcpy (&w0, p + i, 8);
    memcpy (&w1, p + stride + i, 8);
    memcpy (&w2, p + 2 * stride + i, 8);
    memcpy (&w3, p + 3 * stride + i, 8);
    c0 = __builtin_ia32_crc32di (c0, w0);
    c1 = __builtin_ia32_crc32di (c1, w1);
    c2 = __builtin_ia32_crc32di (c2, w2);
    c3 = __builtin_ia32_crc32di (c3, w3);
  }
  out[0] = ~(uint32_t) c0;
  out[1] = ~(uint32_t) c1;
  out[2] = ~(uint32_t) c2;
  out[3] = ~(uint32_t) c3;
}
#endif

void
crc32c_blocks (const void *data, size_t len, size_t block, uint32_t *out)
{
  const unsigned char *p = data;
  size_t off = 0, i = 0;

#ifdef HAVE_HW_CRC
  if (block % 8 == 0 && __builtin_cpu_supports ("sse4.2")) {
    while (len - off >= 4 * block) {
      crc32c_hw_x4 (p + off, block, block, &out[i]);
      off += 4 * block;
      i += 4;
    }
  }
#endif
  for (; off < len; off += block)
    out[i++] = crc32c (0, p + off, len - off < block ? len - off : block);
}

uint32_t
crc32c (uint32_t crc, const void *data, size_t len)
{
  crc = ~crc;
#ifdef HAVE_HW_CRC
  if (__builtin_cpu_supports ("sse4.2"))
    crc = crc32c_hw (crc, data, len);
  else
#endif
    crc = crc32c_sw (crc, data, len);
  return ~crc;
}

/* For the unit test: the portable path, whatever the CPU. */
uint32_t crc32c_portable (uint32_t crc, const void *data, size_t len);
uint32_t
crc32c_portable (uint32_t crc, const void *data, size_t len)
{
  return ~crc32c_sw (~crc, data, len);
}
