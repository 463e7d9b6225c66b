/* shardkit sharded-file: a volume over one directory or several.
 * GPL-3.0-or-later.  See file-set.h.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "file-set.h"
#include "file-volume.h"
#include "ec-store.h"
#include "missing-file.h"
#include "mirror-store.h"
#include "volume-meta.h"

struct file_set {
  unsigned nloc;
  struct file_volume *loc[MIRROR_MAX_LOCATIONS];
  /* Several locations only: */
  struct missing_files *records;
  struct mirror_store *mirror;
  struct ec_store *ec;          /* or this */
  struct chunk_engine *engine;
  uint64_t probe_interval_ns;
  pthread_t catch_up;
  bool catch_up_started;
};

/* Location I's metadata *M against the set's: its place, and the same
 * volume as location 0's FIRST.  Returns 0, or -1 after one line.
 */
static int
check_location (const struct file_set_config *c, const char *name,
                unsigned i, const struct volume_meta *m,
                const struct volume_meta *first)
{
  const char *dir = c->dirnames[i];

  if (m->set_size == 0) {
    nbdkit_error ("dir=%s: volume '%s' there is a single-location volume, "
                  "not a location of a set of %u (it has no set-size=)",
                  dir, name, c->nloc);
    errno = EINVAL;
    return -1;
  }
  if ((m->ec_k != 0) != (c->ec_k != 0) ||
      (c->ec_k && (m->ec_k != c->ec_k || m->ec_m != c->ec_m))) {
    if (m->ec_k)
      nbdkit_error ("dir=%s: volume '%s' there is a location of an "
                    "erasure-coded set (redundancy=ec:%" PRIu32 "+%" PRIu32
                    "), not of this %s", dir, name, m->ec_k, m->ec_m,
                    c->ec_k ? "erasure-coded set" : "mirror");
    else
      nbdkit_error ("dir=%s: volume '%s' there is a location of a mirror, "
                    "not of an erasure-coded set", dir, name);
    errno = EINVAL;
    return -1;
  }
  if (m->set_size != c->nloc) {
    nbdkit_error ("dir=%s: volume '%s' there is a location of a set of %"
                  PRIu32 ", not %u: give every dir= of its set", dir, name,
                  m->set_size, c->nloc);
    errno = EINVAL;
    return -1;
  }
  if (strcmp (m->uuid, first->uuid) != 0) {
    nbdkit_error ("dir=%s: volume '%s' there belongs to another set (uuid "
                  "%s; the first dir='s has %s)", dir, name, m->uuid,
                  first->uuid);
    errno = EINVAL;
    return -1;
  }
  if (m->set_index != i) {
    nbdkit_error ("dir=%s: volume '%s' there is location %" PRIu32 " of its "
                  "set, given as location %u: give the dir= of a set in "
                  "its order", dir, name, m->set_index, i);
    errno = EINVAL;
    return -1;
  }
  if (m->size != first->size || m->chunk_size != first->chunk_size) {
    nbdkit_error ("dir=%s: volume '%s' there has another size or chunk "
                  "size than in the first dir= (damaged metadata?)",
                  dir, name);
    errno = EINVAL;
    return -1;
  }
  if (m->base[0] || m->read_only) {
    nbdkit_error ("dir=%s: volume '%s' there is a snapshot or a clone: "
                  "those are not supported in a set of locations yet",
                  dir, name);
    errno = ENOTSUP;
    return -1;
  }
  return 0;
}

/* With several locations: create the set if it exists nowhere and
 * CREATE asks for it.  Each location gets the same metadata (one uuid)
 * but its own set-index.
 */
static int
create_set (const struct file_set_config *c, const char *name,
            const struct volume_create *create)
{
  uint32_t exists = 0;
  struct volume_meta m;
  unsigned i;

  for (i = 0; i < c->nloc; ++i) {
    int r = file_volume_read_meta (c->dirfds[i], c->dirnames[i], name, &m);
    if (r == -1)
      return -1;
    if (r == 1)
      exists |= UINT32_C (1) << i;
  }
  if (exists) {
    for (i = 0; i < c->nloc; ++i)
      if (!(exists & (UINT32_C (1) << i))) {
        nbdkit_error ("volume '%s' exists in some dir= but not in %s: the "
                      "locations of a set are created together, and a "
                      "replacement location is not supported yet",
                      name, c->dirnames[i]);
        errno = ENOENT;
        return -1;
      }
    return 0;
  }
  if (create == NULL || create->size == 0)
    return 0;                   /* opening it says that it does not exist */
  if (volume_meta_init (&m, create->size, create->chunk_size ?
                        create->chunk_size : CHUNK_SIZE_DEFAULT) == -1) {
    nbdkit_error ("cannot make metadata for volume '%s': %m", name);
    return -1;
  }
  if (c->ec_k) {
    strcpy (m.redundancy, VOLUME_REDUNDANCY_EC);
    m.ec_k = c->ec_k;
    m.ec_m = c->ec_m;
  }
  else
    strcpy (m.redundancy, VOLUME_REDUNDANCY_MIRROR);
  m.set_size = c->nloc;
  for (i = 0; i < c->nloc; ++i) {
    m.set_index = i;
    if (file_volume_create_meta (c->dirfds[i], c->dirnames[i], name,
                                 &m) == -1)
      return -1;
  }
  return 0;
}

int
file_set_prepare (const struct file_set_config *c, const char *name,
                  const struct volume_create *create)
{
  struct volume_meta first, m;
  unsigned i;

  if (c->nloc == 1)
    return file_volume_prepare (c->dirfds[0], c->dirnames[0], name, create);
  if (create_set (c, name, create) == -1)
    return -1;
  for (i = 0; i < c->nloc; ++i) {
    if (file_volume_prepare (c->dirfds[i], c->dirnames[i], name,
                             i == 0 ? create : NULL) == -1 ||
        file_volume_read_meta (c->dirfds[i], c->dirnames[i], name,
                               i == 0 ? &first : &m) != 1 ||
        check_location (c, name, i, i == 0 ? &first : &m, &first) == -1)
      return -1;
  }
  return 0;
}

static int
probe (void *opaque, unsigned loc)
{
  struct file_set *s = opaque;
  return file_volume_probe (s->loc[loc]);
}

static void *
catch_up_thread (void *arg)
{
  struct file_set *s = arg;

  if (s->ec)
    ec_store_run (s->ec, s->probe_interval_ns);
  else
    mirror_store_run (s->mirror, s->probe_interval_ns);
  return NULL;
}

/* Erasure coding: the EC store over the locations. */
static int
new_ec (struct file_set *s, const struct file_set_config *c, const char *name)
{
  const struct volume_meta *m = &s->loc[0]->meta;
  struct ec_config ec = {
    .k = c->ec_k, .m = c->ec_m, .min_write = c->ec_min_write,
    .threads = c->threads,
    .log = &missing_file_ops, .log_opaque = s->records,
    .probe = probe, .probe_opaque = s,
  };
  unsigned i;

  for (i = 0; i < c->nloc; ++i) {
    ec.loc[i] = s->loc[i]->store;
    ec.loc_name[i] = c->dirnames[i];
  }
  s->ec = ec_store_new (name, &ec, m->size, m->chunk_size);
  return s->ec ? 0 : -1;
}

/* Several locations: the mirror over them, and its catch-up thread. */
static int
open_mirror (struct file_set *s, const struct file_set_config *c,
             const char *name, bool readonly)
{
  const struct volume_meta *m = &s->loc[0]->meta;
  struct mirror_config mc = {
    .nloc = c->nloc,
    .mode = c->mode,
    .write_quorum = c->write_quorum ? c->write_quorum : c->nloc,
    .durable_all = c->durable_all,
    .threads = c->threads,
    .log = &missing_file_ops,
    .probe = probe,
    .probe_opaque = s,
  };
  struct chunk_store store;
  unsigned i;
  int err;

  s->records = missing_files_new (name, m->uuid, c->nloc, c->dirfds,
                                  c->dirnames, readonly);
  if (s->records == NULL)
    return -1;
  mc.log_opaque = s->records;
  if (c->ec_k) {
    if (new_ec (s, c, name) == -1)
      return -1;
    store = ec_store_as_store (s->ec);
  }
  else {
    for (i = 0; i < c->nloc; ++i) {
      mc.loc[i] = s->loc[i]->store;
      mc.loc_name[i] = c->dirnames[i];
    }
    s->mirror = mirror_store_new (name, &mc, m->size, m->chunk_size);
    if (s->mirror == NULL)
      return -1;
    store = mirror_store_as_store (s->mirror);
  }
  s->engine = chunk_engine_new (name, store.ops, store.opaque, m->size,
                                m->chunk_size);
  if (s->engine == NULL)
    return -1;
  if (readonly)
    return 0;
  s->probe_interval_ns = c->probe_interval_ns;
  err = pthread_create (&s->catch_up, NULL, catch_up_thread, s);
  if (err) {
    errno = err;
    nbdkit_error ("%s: pthread_create: %m", name);
    return -1;
  }
  s->catch_up_started = true;
  return 0;
}

struct file_set *
file_set_open (const struct file_set_config *c, const char *name,
               bool readonly, const struct volume_create *create)
{
  struct file_set *s;
  unsigned i;

  s = calloc (1, sizeof *s);
  if (s == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  s->nloc = c->nloc;
  if (c->nloc == 1) {
    s->loc[0] = file_volume_open (c->dirfds[0], c->dirnames[0], name,
                                  readonly, VOLUME_OPEN_SERVE, create,
                                  c->max_open_files);
    if (s->loc[0] == NULL)
      goto err;
    /* One copy of a set, alone: read it, never write it (the others
     * would not know what it got).
     */
    /* A fragment store is no disk, even read-only. */
    if (s->loc[0]->meta.ec_k) {
      nbdkit_error ("volume '%s' in %s is location %" PRIu32 " of an "
                    "erasure-coded set (redundancy=ec:%" PRIu32 "+%" PRIu32
                    "): it holds fragments, not the volume; serve it with "
                    "every dir= of the set and that redundancy=", name,
                    c->dirnames[0], s->loc[0]->meta.set_index,
                    s->loc[0]->meta.ec_k, s->loc[0]->meta.ec_m);
      errno = EINVAL;
      goto err;
    }
    if (s->loc[0]->meta.set_size && !s->loc[0]->readonly) {
      nbdkit_error ("volume '%s' in %s is location %" PRIu32 " of a set of "
                    "%" PRIu32 ": serve it with every dir= of the set, or "
                    "read-only (-r) alone", name, c->dirnames[0],
                    s->loc[0]->meta.set_index, s->loc[0]->meta.set_size);
      errno = EROFS;
      goto err;
    }
    s->engine = s->loc[0]->engine;
    return s;
  }

  if (!readonly && create_set (c, name, create) == -1)
    goto err;
  for (i = 0; i < c->nloc; ++i) {
    s->loc[i] = file_volume_open_location (c->dirfds[i], c->dirnames[i],
                                           name, readonly, VOLUME_OPEN_SERVE,
                                           NULL,
                                           c->max_open_files);
    if (s->loc[i] == NULL ||
        check_location (c, name, i, &s->loc[i]->meta,
                        &s->loc[0]->meta) == -1)
      goto err;
  }
  if (volume_check_create (name, c->dirnames[0], &s->loc[0]->meta,
                           create) == -1 ||
      open_mirror (s, c, name, readonly) == -1)
    goto err;
  return s;

 err:
  file_set_close (s);
  return NULL;
}

void
file_set_close (struct file_set *s)
{
  unsigned i;

  if (s == NULL)
    return;
  if (s->catch_up_started) {
    if (s->ec)
      ec_store_stop (s->ec);
    else
      mirror_store_stop (s->mirror);
    pthread_join (s->catch_up, NULL);
  }
  if (s->mirror || s->ec) {
    chunk_engine_free (s->engine);
    mirror_store_free (s->mirror);
    ec_store_free (s->ec);
  }
  missing_files_free (s->records);
  for (i = 0; i < s->nloc; ++i)
    file_volume_close (s->loc[i]);
  free (s);
}

struct chunk_engine *
file_set_engine (struct file_set *s)
{
  return s->engine;
}

bool
file_set_read_only (struct file_set *s)
{
  return s->loc[0]->meta.read_only;
}
