/* shardkit: the chain of bases of a layered volume (volume-chain.h).
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "volume-chain.h"

int
volume_chain_push (struct volume_chain *c, const char *where,
                   const char *layer, const char *base)
{
  unsigned i;

  for (i = 0; i < c->depth; ++i)
    if (strcmp (c->names[i], base) == 0) {
      nbdkit_error ("volume '%s' in %s: its chain of bases is a cycle "
                    "('%s' names '%s' as base, which is already in the "
                    "chain): the metadata was edited by hand",
                    c->names[0], where, layer, base);
      errno = EINVAL;
      return -1;
    }
  if (c->depth > OVERLAY_MAX_DEPTH) {
    nbdkit_error ("volume '%s' in %s: its chain has more than %d bases "
                  "(flatten it)", c->names[0], where, OVERLAY_MAX_DEPTH);
    errno = EINVAL;
    return -1;
  }
  c->names[c->depth++] = base;
  return 0;
}

int
volume_chain_missing (const struct volume_chain *c, const char *where,
                      const char *base)
{
  nbdkit_error ("volume '%s' in %s: its base '%s' does not exist "
                "(a missing link in its chain of bases)",
                c->names[0], where, base);
  errno = ENOENT;
  return -1;
}

static int
check_base (const struct volume_chain *c, const char *where,
                         const char *layer, const struct volume_meta *m,
                         const struct volume_meta *bm)
{
  if (strcmp (bm->uuid, m->base_uuid) != 0) {
    nbdkit_error ("volume '%s' in %s: its base '%s' has uuid %s, not the "
                  "%s it was made from (a different volume of that name)",
                  layer, where, m->base, bm->uuid, m->base_uuid);
    errno = EINVAL;
    return -1;
  }
  if (bm->size != m->size || bm->chunk_size != m->chunk_size) {
    nbdkit_error ("volume '%s' in %s: its base '%s' has another size or "
                  "chunk size", layer, where, m->base);
    errno = EINVAL;
    return -1;
  }
  return 0;
}

int
volume_chain_attach (const struct volume_chain *c, const char *where,
                     const char *layer, const struct volume_meta *m,
                     const struct volume_meta *bm,
                     const struct chunk_store *base, unsigned flags,
                     struct chunk_store *top, struct overlay_store **overlay)
{
  if (base == NULL || check_base (c, where, layer, m, bm) == -1)
    return -1;
  /* Nothing will be read: no overlay, which would list both layers. */
  if (flags & VOLUME_OPEN_META_ONLY)
    return 0;
  *overlay = overlay_store_new (layer, *top, *base, m->size, m->chunk_size);
  if (*overlay == NULL)
    return -1;
  *top = overlay_store_as_store (*overlay);
  return 0;
}
