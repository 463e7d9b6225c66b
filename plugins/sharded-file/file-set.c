/* shardkit sharded-file: a volume over one directory or several.
 * GPL-3.0-or-later.  See file-set.h.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "file-set.h"
#include "file-volume.h"
#include "ec-store.h"
#include "missing-file.h"
#include "mirror-store.h"
#include "set-location.h"
#include "volume-meta.h"
#include "volume-set.h"

#define BIT(i) (UINT32_C (1) << (i))

struct file_set {
  unsigned nloc;
  struct file_volume *loc[MIRROR_MAX_LOCATIONS]; /* one location */
  /* Several locations only: */
  struct file_set_config c;
  char *name;
  struct volume_meta meta;      /* of the first location that answered */
  struct set_location place[MIRROR_MAX_LOCATIONS];
  struct volume_set_params p;   /* c, as the common set code takes it */
  struct missing_files *records;
  struct volume_set_store vs;
  struct chunk_engine *engine;
};

/* The set's parameters as common/volume-set.h takes them. */
static void
params_of (const struct file_set_config *c, struct volume_set_params *p)
{
  unsigned i;

  volume_set_params_init (p);
  p->nloc = c->nloc;
  for (i = 0; i < c->nloc; ++i)
    p->loc_name[i] = c->dirnames[i];
  p->ec_k = c->ec_k;
  p->ec_m = c->ec_m;
  p->ec_min_write = c->ec_min_write;
  p->mode = c->mode;
  p->write_quorum = c->write_quorum;
  p->durable_all = c->durable_all;
  p->threads = c->threads;
  p->probe_interval_ns = c->probe_interval_ns;
}

/* A directory location for volume_set_create. */
static int
dir_read_meta (void *opaque, unsigned i, const char *name,
               struct volume_meta *m)
{
  const struct file_set_config *c = opaque;
  return set_location_read_meta (c->dirnames[i], name, m);
}

static int
dir_create_meta (void *opaque, unsigned i, const char *name,
                 const struct volume_meta *m)
{
  const struct file_set_config *c = opaque;
  return set_location_create_meta (c->dirnames[i], name, m);
}

/* With several locations: create the set if it exists nowhere and
 * CREATE asks for it (volume_set_create).
 */
static int
create_set (const struct file_set_config *c,
            const struct volume_set_params *p, const char *name,
            const struct volume_create *create)
{
  const struct volume_set_io io = {
    dir_read_meta, dir_create_meta, (void *) c,
  };

  return volume_set_create (p, name, create, &io);
}

int
file_set_prepare (const struct file_set_config *c, const char *name,
                  const struct volume_create *create)
{
  struct volume_meta first, m;
  struct volume_set_params p;
  char why[MIRROR_MAX_LOCATIONS][256];
  uint32_t up = 0;
  unsigned i;

  params_of (c, &p);
  if (c->nloc == 1)
    return file_volume_prepare (c->dirfds[0], c->dirnames[0], name, create);
  if (create_set (c, &p, name, create) == -1)
    return -1;
  /* A location that does not answer is not an error while enough do;
   * one that answers must be the right one, and not in use.
   */
  for (i = 0; i < c->nloc; ++i) {
    CLEANUP_CLOSE int fd = open (c->dirnames[i],
                                 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1) {
      snprintf (why[i], sizeof why[i], "%s: %s", c->dirnames[i],
                strerror (errno));
      continue;
    }
    if (file_volume_prepare (fd, c->dirnames[i], name,
                             up ? NULL : create) == -1 ||
        file_volume_read_meta (fd, c->dirnames[i], name, &m) != 1) {
      if (errno == EWOULDBLOCK)
        return -1;
      snprintf (why[i], sizeof why[i], "%s: its volume '%s' cannot be "
                "read", c->dirnames[i], name);
      continue;
    }
    if (volume_set_admit (&p, name, i, &m, &first, &up) == -1)
      return -1;
  }
  return volume_set_enough_up (&p, name, up, why);
}

/* Does location LOC answer again (store_set's probe): see
 * set_location_probe.
 */
static int
probe (void *opaque, unsigned loc)
{
  struct file_set *s = opaque;
  return set_location_probe (&s->place[loc], loc, &s->p, &s->meta, s->name,
                             s->c.max_open_files, s->records);
}

static bool
moved (void *opaque, unsigned loc)
{
  struct file_set *s = opaque;
  return set_location_moved (&s->place[loc]);
}

/* Several locations: the mirror or EC store over them, the records of
 * what each lacks, and (serving read-write) the catch-up thread.
 */
static int
open_store (struct file_set *s, const struct file_set_config *c,
            const char *name, bool readonly, uint32_t down)
{
  struct volume_set_locations l = {
    .down = down,
    .log = &missing_file_ops,
    .readonly = readonly,
    .probe = probe,
    .moved = moved,
    .probe_opaque = s,
  };
  int dirfds[MIRROR_MAX_LOCATIONS];
  unsigned i;

  for (i = 0; i < c->nloc; ++i) {
    dirfds[i] = s->place[i].dirfd;
    l.store[i] = (struct chunk_store) { &set_location_ops, &s->place[i] };
  }
  s->records = missing_files_new (name, s->meta.uuid, c->nloc, dirfds,
                                  c->dirnames, readonly);
  if (s->records == NULL)
    return -1;
  l.log_opaque = s->records;
  if (volume_set_store_open (&s->vs, &s->p, name, &s->meta, &l) == -1)
    return -1;
  s->engine = s->vs.engine;
  if (readonly || c->no_catch_up_thread)
    return 0;
  return volume_set_store_start (&s->vs, name);
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

  s->c = *c;
  params_of (c, &s->p);
  if ((s->name = strdup (name)) == NULL) {
    nbdkit_error ("strdup: %m");
    goto err;
  }
  if (!readonly && create_set (c, &s->p, name, create) == -1)
    goto err;
  /* Degraded open: a location that does not answer starts down (and is
   * probed, and caught up when it answers) while enough others do.
   */
  {
    char why[MIRROR_MAX_LOCATIONS][256];
    uint32_t up = 0;

    for (i = 0; i < c->nloc; ++i) {
      struct set_location *l = &s->place[i];
      int r = set_location_open (l, c->dirnames[i], name, readonly,
                                 VOLUME_OPEN_SERVE, c->max_open_files);
      if (r == -1)
        goto err;
      if (r == 1) {
        memcpy (why[i], l->why, sizeof why[i]);
        nbdkit_debug ("%s: location %u did not answer: %s: it starts down",
                      name, i, l->why);
        continue;
      }
      if (volume_set_admit (&s->p, name, i, &l->v->meta, &s->meta,
                            &up) == -1)
        goto err;
    }
    if (volume_set_enough_up (&s->p, name, up, why) == -1 ||
        volume_check_create (name, c->dirnames[__builtin_ctz (up)],
                             &s->meta, create) == -1 ||
        open_store (s, c, name, readonly, ~up & ((1u << c->nloc) - 1)) == -1)
      goto err;
  }
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
  volume_set_store_close (&s->vs);
  missing_files_free (s->records);
  for (i = 0; i < s->nloc; ++i) {
    file_volume_close (s->loc[i]);
    if (s->place[i].path)
      set_location_close (&s->place[i]);
  }
  free (s->name);
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
  /* A set holds no snapshots (check_location). */
  return s->nloc == 1 && s->loc[0]->meta.read_only;
}

const struct volume_meta *
file_set_meta (struct file_set *s)
{
  return s->nloc == 1 ? &s->loc[0]->meta : &s->meta;
}

struct mirror_store *
file_set_mirror (struct file_set *s)
{
  return s->vs.mirror;
}

struct ec_store *
file_set_ec (struct file_set *s)
{
  return s->vs.ec;
}

struct volume_set_store *
file_set_store (struct file_set *s)
{
  return &s->vs;
}

struct chunk_store
file_set_location_store (struct file_set *s, unsigned i)
{
  if (s->nloc == 1)
    return s->loc[0]->store;
  return (struct chunk_store) { &set_location_ops, &s->place[i] };
}
