/* shardkit s3-object: MD5 and SHA-256 together, in one pass.
 * GPL-3.0-or-later.
 *
 * Every chunk PUT needs both digests of its body (Content-MD5 and
 * x-amz-content-sha256).  One MD5 is a chain of dependent integer steps
 * that leaves most of a core idle; SHA-256 with the SHA extensions runs
 * in the vector units.  Interleaved, the SHA-256 rounds fit in the gaps
 * of the MD5 chain: here both digests of a message cost about what its
 * MD5 alone did (1.5 s/GiB instead of 2.0), and of two messages side by
 * side 0.95 s/GiB each instead of 1.5.  md5-batch.c uses these kernels
 * when it hashes one or two messages at a time.
 */
#ifndef SHARDKIT_MD5_SHA256_H
#define SHARDKIT_MD5_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SHA-256's initial state (H0..H7). */
extern const uint32_t sha256_iv[8];

/* true if this CPU has the SHA extensions (and SSSE3, SSE4.1). */
extern bool md5_sha256_supported (void);

/* Advance the MD5 state MD5 by NBLOCKS 64-byte blocks at MD5_DATA and
 * the SHA-256 state SHA by NBLOCKS blocks at SHA_DATA (the two may be
 * different places of one message: SHA-256 can lag behind).  Only call
 * it when md5_sha256_supported ().
 */
extern void md5_sha256_blocks (uint32_t md5[4], const unsigned char *md5_data,
                               uint32_t sha[8], const unsigned char *sha_data,
                               size_t nblocks);

/* The same for two messages at once, 0 and 1. */
extern void md5_sha256_blocks_x2 (uint32_t md5_0[4],
                                  const unsigned char *md5_data0,
                                  uint32_t sha_0[8],
                                  const unsigned char *sha_data0,
                                  uint32_t md5_1[4],
                                  const unsigned char *md5_data1,
                                  uint32_t sha_1[8],
                                  const unsigned char *sha_data1,
                                  size_t nblocks);

#endif
