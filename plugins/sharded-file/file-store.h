/* shardkit sharded-file: the chunk store over files in a directory.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_FILE_STORE_H
#define SHARDKIT_FILE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "chunk-engine.h"

/* The store functions take the struct file_volume as their store. */
extern const struct chunk_store_ops file_store_ops;

/* fd_cache_open_fn for a struct file_volume. */
extern int file_store_open_chunk (void *volume, uint64_t n, bool create,
                                  bool *created);

#endif /* SHARDKIT_FILE_STORE_H */
