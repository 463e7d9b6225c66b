/* shardkit s3-object: MD5 digests of concurrent callers computed
 * together.  GPL-3.0-or-later.
 *
 * Every chunk PUT needs the MD5 of its body (Content-MD5), and on this
 * kind of machine MD5 is the largest CPU cost of writing to S3.  Callers
 * on different threads that hash at the same time share the 16 lanes of
 * md5-lanes.c: one of them runs the lanes for all until its own message
 * is done, then hands the others on.  Without AVX-512, or for small
 * messages, it is OpenSSL's MD5.
 */
#ifndef SHARDKIT_MD5_BATCH_H
#define SHARDKIT_MD5_BATCH_H

#include <stddef.h>

/* The MD5 of LEN bytes at DATA into OUT.  Thread-safe; blocks until the
 * digest is ready.  Returns 0, or -1 with errno set.
 */
extern int md5_batch (const void *data, size_t len, unsigned char out[16]);

/* For tests: the most messages that shared one pass of the lanes so far
 * (0 if the lanes were never used).
 */
extern unsigned md5_batch_max_shared (void);

#endif
