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

/* The object as a read-only volume: a chunk engine over a store whose
 * chunk n is bytes [n*C, (n+1)*C) of the object, read with ranged GETs
 * (so that a large read runs as PARALLEL ranged GETs at once).
 */
struct s3_raw_volume {
  struct s3_client *client;     /* borrowed from the plugin */
  char *key;
  uint64_t size;
  struct chunk_engine *engine;
};

/* Returns NULL after nbdkit_error (an empty or missing object). */
extern struct s3_raw_volume *s3_raw_open (struct s3_client *c,
                                          const char *key, unsigned parallel);
extern void s3_raw_close (struct s3_raw_volume *r);

#endif
