/* shardkit s3-object: key=KEY, one existing object served read-only.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_S3_RAW_H
#define SHARDKIT_S3_RAW_H

#include <stdint.h>

#include "s3-http.h"

/* Size of the object from HEAD.  Returns 0, or -1 after nbdkit_error
 * (ENOENT if it does not exist).
 */
extern int s3_raw_size (struct s3_client *c, const char *key, uint64_t *size);

/* COUNT bytes at OFFSET with one ranged GET.  The object must still be
 * SIZE bytes long (a changed object is EIO, not a mix of two versions'
 * lengths).
 */
extern int s3_raw_read (struct s3_client *c, const char *key, uint64_t size,
                        void *buf, uint32_t count, uint64_t offset);

#endif
