/* shardkit: a volume over a set of locations.  GPL-3.0-or-later.
 * See volume-set.h.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "volume-set.h"

#define BIT(i) (UINT32_C (1) << (i))

void
volume_set_params_init (struct volume_set_params *p)
{
  memset (p, 0, sizeof *p);
  p->mode = MIRROR_SYNC;
  p->probe_interval_ns = VOLUME_SET_DEFAULT_PROBE_INTERVAL;
}

void
volume_set_meta_shape (const struct volume_set_params *p, unsigned i,
                       struct volume_meta *m)
{
  if (p->ec_k) {
    strcpy (m->redundancy, VOLUME_REDUNDANCY_EC);
    m->ec_k = p->ec_k;
    m->ec_m = p->ec_m;
  }
  else
    strcpy (m->redundancy, VOLUME_REDUNDANCY_MIRROR);
  m->set_size = p->nloc;
  m->set_index = i;
}

int
volume_set_check_location (const struct volume_set_params *p,
                           const char *name, unsigned i,
                           const struct volume_meta *m,
                           const struct volume_meta *first)
{
  const char *where = p->loc_name[i];

  if (m->set_size == 0) {
    nbdkit_error ("%s: volume '%s' there is a single-location volume, "
                  "not a location of a set of %u (it has no set-size=)",
                  where, name, p->nloc);
    errno = EINVAL;
    return -1;
  }
  if ((m->ec_k != 0) != (p->ec_k != 0) ||
      (p->ec_k && (m->ec_k != p->ec_k || m->ec_m != p->ec_m))) {
    if (m->ec_k)
      nbdkit_error ("%s: volume '%s' there is a location of an "
                    "erasure-coded set (redundancy=ec:%" PRIu32 "+%" PRIu32
                    "), not of this %s", where, name, m->ec_k, m->ec_m,
                    p->ec_k ? "erasure-coded set" : "mirror");
    else
      nbdkit_error ("%s: volume '%s' there is a location of a mirror, "
                    "not of an erasure-coded set", where, name);
    errno = EINVAL;
    return -1;
  }
  if (m->set_size != p->nloc) {
    nbdkit_error ("%s: volume '%s' there is a location of a set of %"
                  PRIu32 ", not %u: give every location of its set", where,
                  name, m->set_size, p->nloc);
    errno = EINVAL;
    return -1;
  }
  if (strcmp (m->uuid, first->uuid) != 0) {
    nbdkit_error ("%s: volume '%s' there belongs to another set (uuid "
                  "%s; the first location's has %s)", where, name, m->uuid,
                  first->uuid);
    errno = EINVAL;
    return -1;
  }
  if (m->set_index != i) {
    nbdkit_error ("%s: volume '%s' there is location %" PRIu32 " of its "
                  "set, given as location %u: give the locations of a set "
                  "in its order", where, name, m->set_index, i);
    errno = EINVAL;
    return -1;
  }
  if (m->size != first->size || m->chunk_size != first->chunk_size) {
    nbdkit_error ("%s: volume '%s' there has another size or chunk "
                  "size than in the first location (damaged metadata?)",
                  where, name);
    errno = EINVAL;
    return -1;
  }
  if (m->base[0] || m->read_only) {
    nbdkit_error ("%s: volume '%s' there is a snapshot or a clone: "
                  "those are not supported in a set of locations yet",
                  where, name);
    errno = ENOTSUP;
    return -1;
  }
  return 0;
}

int
volume_set_admit (const struct volume_set_params *p, const char *name,
                  unsigned i, const struct volume_meta *m,
                  struct volume_meta *first, uint32_t *up)
{
  if (*up == 0)
    *first = *m;
  if (volume_set_check_location (p, name, i, m, first) == -1)
    return -1;
  *up |= BIT (i);
  return 0;
}

int
volume_set_create (const struct volume_set_params *p, const char *name,
                   const struct volume_create *create,
                   const struct volume_set_io *io)
{
  uint32_t exists = 0, silent = 0;
  struct volume_meta m;
  unsigned i;

  for (i = 0; i < p->nloc; ++i) {
    int r = io->read_meta (io->opaque, i, name, &m);
    if (r == -1)
      silent |= BIT (i);
    if (r == 1)
      exists |= BIT (i);
  }
  if (exists) {
    for (i = 0; i < p->nloc; ++i)
      if (!(exists & BIT (i)) && !(silent & BIT (i))) {
        nbdkit_error ("volume '%s' exists in some locations but not in %s: "
                      "the locations of a set are created together, and a "
                      "replacement location is not supported yet",
                      name, p->loc_name[i]);
        errno = ENOENT;
        return -1;
      }
    return 0;
  }
  if (create == NULL || create->size == 0)
    return 0;                   /* opening it says that it does not exist */
  if (silent) {
    nbdkit_error ("volume '%s' cannot be created: %s does not answer (the "
                  "locations of a set are created together)", name,
                  p->loc_name[__builtin_ctz (silent)]);
    errno = EIO;
    return -1;
  }
  if (volume_meta_init (&m, create->size, create->chunk_size ?
                        create->chunk_size : CHUNK_SIZE_DEFAULT) == -1) {
    nbdkit_error ("cannot make metadata for volume '%s': %m", name);
    return -1;
  }
  for (i = 0; i < p->nloc; ++i) {
    volume_set_meta_shape (p, i, &m);
    if (io->create_meta (io->opaque, i, name, &m) == -1)
      return -1;
  }
  return 0;
}

unsigned
volume_set_min_up (const struct volume_set_params *p)
{
  if (p->ec_k)
    return ec_store_min_up (p->ec_k, p->ec_m,
                            p->ec_min_write ? p->ec_min_write :
                            p->ec_m ? p->ec_k + 1 : p->ec_k);
  return mirror_store_min_up (p->nloc, p->mode == MIRROR_ASYNC ? 1 :
                              p->write_quorum ? p->write_quorum : p->nloc);
}

int
volume_set_enough_up (const struct volume_set_params *p, const char *name,
                      uint32_t up, char why[][256])
{
  char list[1024] = "";
  size_t used = 0;
  unsigned i;

  if ((unsigned) __builtin_popcount (up) >= volume_set_min_up (p))
    return 0;
  for (i = 0; i < p->nloc; ++i)
    if (!(up & BIT (i)) && used < sizeof list)
      used += (size_t) snprintf (list + used, sizeof list - used, "%s%s",
                                 used ? "; " : "", why[i]);
  if (p->ec_k)
    nbdkit_error ("volume '%s': %u of %u locations answer, fewer than the "
                  "%u it needs (ec:%u+%u): did not answer: %s", name,
                  (unsigned) __builtin_popcount (up), p->nloc, volume_set_min_up (p),
                  p->ec_k, p->ec_m, list);
  else
    nbdkit_error ("volume '%s': %u of %u locations answer, fewer than the "
                  "%u it needs (write-quorum=%u): did not answer: %s", name,
                  (unsigned) __builtin_popcount (up), p->nloc, volume_set_min_up (p),
                  p->mode == MIRROR_ASYNC ? 1 :
                  p->write_quorum ? p->write_quorum : p->nloc, list);
  errno = EIO;
  return -1;
}

int
volume_set_store_open (struct volume_set_store *vs,
                       const struct volume_set_params *p, const char *name,
                       const struct volume_meta *m,
                       const struct volume_set_locations *l)
{
  struct chunk_store store;
  unsigned i;

  memset (vs, 0, sizeof *vs);
  vs->probe_interval_ns = p->probe_interval_ns;
  if (p->ec_k) {
    struct ec_config ec = {
      .k = p->ec_k, .m = p->ec_m, .min_write = p->ec_min_write,
      .down = l->down, .threads = p->threads, .readonly = l->readonly,
      .log = l->log, .log_opaque = l->log_opaque,
      .probe = l->probe, .moved = l->moved, .probe_opaque = l->probe_opaque,
    };
    for (i = 0; i < p->nloc; ++i) {
      ec.loc[i] = l->store[i];
      ec.loc_name[i] = p->loc_name[i];
    }
    vs->ec = ec_store_new (name, &ec, m->size, m->chunk_size);
    if (vs->ec == NULL)
      return -1;
    store = ec_store_as_store (vs->ec);
  }
  else {
    struct mirror_config mc = {
      .nloc = p->nloc, .down = l->down, .mode = p->mode,
      .write_quorum = p->write_quorum ? p->write_quorum : p->nloc,
      .durable_all = p->durable_all, .threads = p->threads,
      .log = l->log, .log_opaque = l->log_opaque, .readonly = l->readonly,
      .probe = l->probe, .moved = l->moved, .probe_opaque = l->probe_opaque,
    };
    for (i = 0; i < p->nloc; ++i) {
      mc.loc[i] = l->store[i];
      mc.loc_name[i] = p->loc_name[i];
    }
    vs->mirror = mirror_store_new (name, &mc, m->size, m->chunk_size);
    if (vs->mirror == NULL)
      return -1;
    store = mirror_store_as_store (vs->mirror);
  }
  vs->engine = chunk_engine_new (name, store.ops, store.opaque, m->size,
                                 m->chunk_size);
  return vs->engine ? 0 : -1;
}

static void *
catch_up_thread (void *arg)
{
  struct volume_set_store *vs = arg;

  if (vs->ec)
    ec_store_run (vs->ec, vs->probe_interval_ns);
  else
    mirror_store_run (vs->mirror, vs->probe_interval_ns);
  return NULL;
}

int
volume_set_store_start (struct volume_set_store *vs, const char *name)
{
  int err;

  if (vs->catch_up_started)
    return 0;
  err = pthread_create (&vs->catch_up, NULL, catch_up_thread, vs);
  if (err) {
    errno = err;
    nbdkit_error ("%s: pthread_create: %m", name);
    return -1;
  }
  vs->catch_up_started = true;
  return 0;
}

void
volume_set_store_close (struct volume_set_store *vs)
{
  if (vs->catch_up_started) {
    if (vs->ec)
      ec_store_stop (vs->ec);
    else
      mirror_store_stop (vs->mirror);
    pthread_join (vs->catch_up, NULL);
    vs->catch_up_started = false;
    /* A clean close leaves no write intents for the next open. */
    if (vs->ec)
      ec_store_compact (vs->ec);
    else
      mirror_store_compact (vs->mirror);
  }
  if (vs->engine)
    chunk_engine_free (vs->engine);
  mirror_store_free (vs->mirror);
  ec_store_free (vs->ec);
  vs->engine = NULL;
  vs->mirror = NULL;
  vs->ec = NULL;
}

bool
volume_set_store_is_up (const struct volume_set_store *vs, unsigned loc)
{
  return vs->ec ? ec_store_is_up (vs->ec, loc)
    : mirror_store_is_up (vs->mirror, loc);
}

uint64_t
volume_set_store_lacking (const struct volume_set_store *vs, unsigned loc)
{
  return vs->ec ? ec_store_lacking (vs->ec, loc)
    : mirror_store_lacking (vs->mirror, loc);
}
