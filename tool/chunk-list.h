/* shardkit volume tool: a list of chunk numbers to remove.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_TOOL_CHUNK_LIST_H
#define SHARDKIT_TOOL_CHUNK_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "where.h"

struct chunk_list {
  uint64_t *ns;
  size_t len, cap;
  uint64_t from;                /* only chunks from this number on */
  bool failed;                  /* out of memory: the list is short */
};

/* Add chunk N (if N >= l->from); on failure l->failed is set. */
extern void chunk_list_add (struct chunk_list *l, uint64_t n);

/* chunk_list_add as the FOUND callback of a store's list(). */
extern void chunk_list_found (void *opaque, uint64_t n);

/* Remove the chunks of L from TV's store, in batches of as many as one
 * S3 DeleteObjects takes, with a progress bar titled WHAT (NULL: none).
 * *REMOVED (if not NULL) says how many went.  Does not sync the store.
 * Returns 0, or -1 after an error.
 */
extern int chunk_list_remove (struct tool_volume *tv,
                              const struct chunk_list *l, const char *what,
                              size_t *removed);

#endif
