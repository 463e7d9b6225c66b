/* shardkit s3-object: MD5 digests of concurrent callers computed
 * together.  GPL-3.0-or-later.
 *
 * Every chunk PUT needs the MD5 of its body (Content-MD5) and its
 * SHA-256, and on this kind of machine they are the largest CPU cost of
 * writing to S3.  Callers on different threads that hash at the same
 * time share one runner: one of them hashes for all until its own
 * message is done, then hands the others on.  Callers that want MD5
 * only share the 16 lanes of md5-lanes.c; callers that want SHA-256 too
 * go one or two at a time through md5-sha256.c, which computes both in
 * one pass.  Without AVX-512, MD5-only messages go through OpenSSL;
 * without the SHA extensions, SHA-256 does; small messages always do.
 */
#ifndef SHARDKIT_MD5_BATCH_H
#define SHARDKIT_MD5_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The MD5 of LEN bytes at DATA into OUT.  Thread-safe; blocks until the
 * digest is ready.  Returns 0, or -1 with errno set.
 */
extern int md5_batch (const void *data, size_t len, unsigned char out[16]);

/* The MD5 and the SHA-256 of LEN bytes at DATA, the SHA-256 computed in
 * the same pass where the CPU allows (see md5-sha256.h).  SHA256 may be
 * NULL.  Thread-safe; returns 0, or -1 with errno set.
 */
extern int md5_sha256_batch (const void *data, size_t len,
                             unsigned char md5[16],
                             unsigned char sha256[32]);

/* For tests: use the MD5 lanes and the fused SHA-256 only if LANES and
 * SHA (and the CPU has them), so that the other paths run on any CPU.
 * Call it while no digest is being computed.
 */
extern void md5_batch_set_cpu (bool lanes, bool sha);

/* What md5_batch did so far, for the debug log and tests. */
struct md5_batch_stats {
  unsigned max_shared;          /* most messages hashed together */
  uint64_t bytes_alone;         /* hashed while no other message was */
  uint64_t bytes_sha_fused;     /* SHA-256 bytes hashed beside MD5 */
  uint64_t bytes_sha_fused_pairs; /* the part with two messages at once */
  uint64_t bytes_sha_lagged;    /* left to the owner after the MD5 */
  uint64_t bytes_shared;        /* hashed together with others */
};
extern void md5_batch_get_stats (struct md5_batch_stats *stats);

#endif
