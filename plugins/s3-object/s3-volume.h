/* shardkit s3-object: one volume in a bucket (PREFIX/NAME.meta and
 * PREFIX/NAME.<n>.chunk objects), with its chunk engine and S3 store.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_S3_VOLUME_H
#define SHARDKIT_S3_VOLUME_H

#include <stdbool.h>
#include <stdint.h>

#include "s3-http.h"
#include "volume-meta.h"

struct s3_volume {
  struct s3_client *client;     /* borrowed from the plugin */
  char *name;
  char *prefix;                 /* "" or ending in '/' */
  bool readonly;
  struct volume_meta meta;
  uint32_t sub_block;           /* bytes per CRC32C in object metadata */
  struct chunk_engine *engine;
  struct s3_lease *lease;       /* held while open read-write */
};

struct s3_volume_create {
  uint64_t size;                /* 0: never create */
  uint32_t chunk_size;          /* 0: default; else must match if existing */
};

/* Key of chunk N / of the metadata object, malloc'd (NULL on ENOMEM). */
extern char *s3_volume_chunk_key (const struct s3_volume *v, uint64_t n);
extern char *s3_volume_meta_key (const char *prefix, const char *name);

/* Read NAME.meta (creating the volume if CREATE says so), check it
 * against CREATE, and fill *M.  Returns 0, or -1 after nbdkit_error
 * (errno ENOENT for a volume that does not exist).
 */
extern int s3_volume_prepare (struct s3_client *c, const char *prefix,
                              const char *name,
                              const struct s3_volume_create *create,
                              struct volume_meta *m);

/* Open the volume: metadata, then (read-write: with the lease of
 * s3-lease.h taken as LEASE says) a listing of its chunks.  PARALLEL is
 * how many chunk requests one NBD request may have in flight.  Returns
 * NULL after nbdkit_error.
 */
struct s3_lease_config;
extern struct s3_volume *s3_volume_open (struct s3_client *c,
                                         const char *prefix, const char *name,
                                         bool readonly,
                                         const struct s3_volume_create *create,
                                         unsigned parallel,
                                         const struct s3_lease_config *lease);
extern void s3_volume_close (struct s3_volume *v);

/* The sub-block size for a chunk size: 64 KiB, or larger so that a
 * chunk has at most 128 sub-blocks (the CRC list must fit in S3's
 * 2 KiB of user metadata).
 */
extern uint32_t s3_sub_block_size (uint32_t chunk_size);

/* List every object key under PREFIX that ends in SUFFIX, calling
 * FOUND (OPAQUE, key) for each.  Paginated ListObjectsV2.  Returns 0, or
 * -1 after nbdkit_error.
 */
extern int s3_list_keys (struct s3_client *c, const char *prefix,
                         int (*found) (void *opaque, const char *key),
                         void *opaque);

/* Read a small object whole (at most MAX bytes) into a malloc'd,
 * NUL-terminated buffer.  Returns 1 found, 0 missing, -1 error.
 */
extern int s3_get_small (struct s3_client *c, const char *key, size_t max,
                         char **body, size_t *len);

#endif
