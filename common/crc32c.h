/* shardkit: CRC32C (Castagnoli), the checksum of sub-blocks of chunk
 * objects (s3-object) and of a volume's NAME.meta (volume-meta.c).
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_CRC32C_H
#define SHARDKIT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C of LEN bytes at DATA, continuing from CRC (0 to start).
 * crc32c (0, "123456789", 9) == 0xe3069283.
 */
extern uint32_t crc32c (uint32_t crc, const void *data, size_t len);

/* The CRC32C of each BLOCK-byte piece of the LEN bytes at DATA (the
 * last piece may be shorter) into OUT[0..ceil(LEN/BLOCK)-1].
 */
extern void crc32c_blocks (const void *data, size_t len, size_t block,
                           uint32_t *out);

#endif
