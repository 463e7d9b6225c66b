/* shardkit s3-object: the integrity digests of a chunk object.
 * GPL-3.0-or-later.
 *
 * In the object's user metadata:
 *
 *   x-amz-meta-shardkit-crc32c: v1,<object length>,<sub-block size>,<hex>
 *
 * where <hex> is 8 hex digits (CRC32C) per sub-block, the last one
 * possibly short.  The CRCs let a ranged GET of a few KiB be verified by
 * fetching only the sub-blocks that cover it, and check every byte of a
 * whole GET.  (Objects written before issue 13 also carry
 * x-amz-meta-shardkit-sha256, the SHA-256 of the object; it is no longer
 * written nor read: checking it on every whole GET would cost 0.75 CPU s
 * per GiB read, about the whole read budget, for nothing the CRCs miss.)
 *
 * In flight, a chunk PUT carries the SHA-256 of its body, signed
 * (x-amz-content-sha256), which the server checks against the body.
 * MD5 (Content-MD5) only where S3 requires it or nothing else protects
 * the body: DeleteObjects, the .meta PUT, unsigned (anonymous) PUTs.
 * All digests go through OpenSSL's EVP interface, which uses the CPU's
 * SHA extensions where it has them.
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

/* Everything a chunk PUT needs: the CRCs into *D, the hex SHA-256 (for
 * x-amz-content-sha256) and, unless MD5_BASE64 is NULL, the base64 MD5
 * (for Content-MD5).  Returns 0, or -1 with errno set.
 */
extern int s3_digest_compute_all (const void *data, uint64_t len,
                                  uint32_t block, struct s3_digest *d,
                                  char sha256_hex[65], char md5_base64[25]);

/* The Content-MD5 header value (base64 MD5) of LEN bytes at DATA.
 * Returns 0, or -1 with errno set.
 */
extern int s3_content_md5 (const void *data, size_t len,
                           char md5_base64[25]);

/* The MD5 of LEN bytes at DATA into OUT (to compare with a plain-MD5
 * ETag).  Returns 0, or -1 with errno set.
 */
extern int s3_md5 (const void *data, size_t len, unsigned char out[16]);

/* Does the whole object BODY (LEN bytes) match ETAG, when ETAG is a
 * plain MD5 (an object written by a single PUT)?  Returns 0 if it
 * matches or the ETag cannot tell, -1 with *WHY (a static string) if
 * not.
 */
extern int s3_etag_check (const void *body, size_t len, const char *etag,
                          const char **why);

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
