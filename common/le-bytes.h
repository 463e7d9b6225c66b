/* shardkit: little-endian integers in byte buffers (the on-disk and
 * in-bucket records: EC fragment trailers, missing-chunk records).
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_LE_BYTES_H
#define SHARDKIT_LE_BYTES_H

#include <stdint.h>

static inline void
put_le32 (uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t) v; p[1] = (uint8_t) (v >> 8);
  p[2] = (uint8_t) (v >> 16); p[3] = (uint8_t) (v >> 24);
}

static inline void
put_le64 (uint8_t *p, uint64_t v)
{
  put_le32 (p, (uint32_t) v);
  put_le32 (p + 4, (uint32_t) (v >> 32));
}

static inline uint32_t
get_le32 (const uint8_t *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
    (uint32_t) p[3] << 24;
}

static inline uint64_t
get_le64 (const uint8_t *p)
{
  return get_le32 (p) | (uint64_t) get_le32 (p + 4) << 32;
}

#endif /* SHARDKIT_LE_BYTES_H */
