/* shardkit s3-object: MD5 of up to 16 messages at once (AVX-512).
 * GPL-3.0-or-later.
 *
 * One MD5 is a chain of dependent steps: a single message cannot go
 * faster than one step's latency, about 4.7 cycles per byte here.  Sixteen
 * independent messages in the 32-bit lanes of one AVX-512 register take
 * the same time per block as one, so every message that shares the
 * register with others is hashed nearly for free.  md5-batch.c gathers
 * the concurrent Content-MD5 computations of s3-object into the lanes.
 */
#ifndef SHARDKIT_MD5_LANES_H
#define SHARDKIT_MD5_LANES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MD5_LANES 16

/* MD5's initial state (A, B, C, D). */
extern const uint32_t md5_iv[4];

/* true if this CPU runs md5_lanes_blocks (AVX2, AVX-512F, AVX-512VL). */
extern bool md5_lanes_supported (void);

/* Advance STATE[l] by NBLOCKS 64-byte blocks read from DATA[l], for every
 * lane l < MD5_LANES.  Every DATA[l] must have NBLOCKS * 64 readable
 * bytes (give unused lanes a buffer of zeros and ignore their state).
 * Only call it when md5_lanes_supported ().
 */
extern void md5_lanes_blocks (uint32_t state[MD5_LANES][4],
                              const unsigned char *const data[MD5_LANES],
                              size_t nblocks);

/* The same for lanes 0-7 only (DATA[8..15] and STATE[8..15] are not
 * used): half the work per block when no more lanes are busy.
 */
extern void md5_lanes_blocks_8 (uint32_t state[MD5_LANES][4],
                                const unsigned char *const data[MD5_LANES],
                                size_t nblocks);

/* One message alone: advance STATE by NBLOCKS blocks at DATA with
 * OpenSSL's single-stream MD5 (faster than one busy lane).
 */
extern void md5_blocks_scalar (uint32_t state[4], const unsigned char *data,
                               size_t nblocks);

/* Two messages together: about 1.7x the speed of one at a time. */
extern void md5_blocks_scalar_x2 (uint32_t state0[4], uint32_t state1[4],
                                  const unsigned char *data0,
                                  const unsigned char *data1,
                                  size_t nblocks);

/* The one or two final blocks of a message of TOTAL bytes whose last
 * TOTAL % 64 bytes are at TAIL: those bytes, the 0x80 marker, zeros and
 * the bit length.  Writes them to OUT (128 bytes) and returns how many
 * blocks they are.
 */
extern size_t md5_padding (const unsigned char *tail, uint64_t total,
                           unsigned char out[128]);

/* The 16-byte digest from a final state. */
extern void md5_state_bytes (const uint32_t state[4], unsigned char out[16]);

#endif
