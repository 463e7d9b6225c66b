/* shardkit s3-object: the integrity digests kept in a chunk object's
 * user metadata.
 * GPL-3.0-or-later.
 *
 *   x-amz-meta-shardkit-sha256: <hex SHA-256 of the object>
 *   x-amz-meta-shardkit-crc32c: v1,<object length>,<sub-block size>,<hex>
 *
 * where <hex> is 8 hex digits (CRC32C) per sub-block, the last one
 * possibly short.  The CRCs let a ranged GET of a few KiB be verified by
 * fetching only the sub-blocks that cover it.
 */
#ifndef SHARDKIT_S3_DIGEST_H
#define SHARDKIT_S3_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define S3_DIGEST_MAX_BLOCKS 128

struct s3_digest {
  uint64_t len;                 /* object length */
  uint32_t block;               /* sub-block size */
  uint32_t nblocks;
  uint32_t crc[S3_DIGEST_MAX_BLOCKS];
};

/* Compute the CRCs of LEN bytes at DATA.  Returns 0, or -1 (EINVAL) if
 * LEN needs more than S3_DIGEST_MAX_BLOCKS sub-blocks of BLOCK bytes.
 */
extern int s3_digest_compute (const void *data, uint64_t len, uint32_t block,
                              struct s3_digest *d);

/* Everything a chunk PUT needs (the CRCs, then MD5 and SHA-256 together
 * through md5-batch.h): the CRCs into *D, the hex SHA-256 (for
 * x-amz-content-sha256 and the metadata) and the base64 MD5 (for
 * Content-MD5).  Returns 0, or -1 with errno set.
 */
extern int s3_digest_compute_all (const void *data, uint64_t len,
                                  uint32_t block, struct s3_digest *d,
                                  char sha256_hex[65], char md5_base64[25]);

/* The Content-MD5 header value (base64 MD5) of LEN bytes at DATA, through
 * md5-batch.h.  Returns 0, or -1 with errno set.
 */
extern int s3_content_md5 (const void *data, size_t len,
                           char md5_base64[25]);

/* The header value (malloc'd), or NULL on ENOMEM. */
extern char *s3_digest_format (const struct s3_digest *d);

/* Parse a header value.  Returns 0, or -1 if it is malformed. */
extern int s3_digest_parse (const char *s, struct s3_digest *d);

/* Check object bytes [FIRST, END) held at DATA: FIRST must be a sub-block
 * boundary and END a sub-block boundary or the object's end.  Returns 0
 * if every sub-block matches, or -1 with *BAD the first failing
 * sub-block (UINT32_MAX if the range itself does not fit the digest).
 */
extern int s3_digest_verify (const struct s3_digest *d, const void *data,
                             uint64_t first, uint64_t end, uint32_t *bad);

#endif
