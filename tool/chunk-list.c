/* shardkit volume tool: a list of chunk numbers to remove.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <stdlib.h>

#include "chunk-engine.h"
#include "chunk-list.h"
#include "tool.h"

#define REMOVE_BATCH 1000

void
chunk_list_add (struct chunk_list *l, uint64_t n)
{
  if (l->failed || n < l->from)
    return;
  if (l->len == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 1024;
    uint64_t *ns = realloc (l->ns, cap * sizeof *ns);
    if (ns == NULL) {
      l->failed = true;
      return;
    }
    l->ns = ns;
    l->cap = cap;
  }
  l->ns[l->len++] = n;
}

void
chunk_list_found (void *opaque, uint64_t n)
{
  chunk_list_add (opaque, n);
}

int
chunk_list_remove (struct tool_volume *tv, const struct chunk_list *l,
                   const char *what, size_t *removed)
{
  size_t i, k;
  int r = 0;

  if (what && l->len)
    progress_start (what, l->len);
  for (i = 0; i < l->len; i += k) {
    k = l->len - i < REMOVE_BATCH ? l->len - i : REMOVE_BATCH;
    if (tv->ops->remove (tv->store, &l->ns[i], k, false) == -1) {
      r = -1;
      break;
    }
    if (what)
      progress_add (k);
  }
  if (what && l->len)
    progress_end ();
  if (removed)
    *removed = i;
  return r;
}
