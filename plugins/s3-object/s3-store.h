/* shardkit s3-object: the chunk store over objects in a bucket.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_S3_STORE_H
#define SHARDKIT_S3_STORE_H

#include "chunk-engine.h"

/* The store functions take the struct s3_volume as their store. */
extern const struct chunk_store_ops s3_store_ops;

#endif
