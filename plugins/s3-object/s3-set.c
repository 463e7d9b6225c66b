/* shardkit s3-object: a volume over several locations.
 * GPL-3.0-or-later.  See s3-set.h.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "file-volume.h"
#include "missing-file.h"
#include "s3-missing.h"
#include "s3-set.h"
#include "s3-volume.h"
#include "set-location.h"
#include "volume-chain.h"
#include "volume-meta.h"

#define BIT(i) (UINT32_C (1) << (i))

/* A bucket location of an open set. */
struct bucket_place {
  /* Atomic: NULL until it answers.  Once open it is never replaced
   * (a lease lost for good keeps the location down), so a request may
   * use it without a lock.
   */
  struct s3_volume *v;
  bool told;                    /* its last probe's refusal was logged */
};

struct s3_set {
  struct s3_set_config c;
  char *name;
  bool readonly;
  struct volume_meta meta;      /* of the first location that answered */
  struct bucket_place bucket[VOLUME_SET_MAX_LOCATIONS];
  struct set_location dir[VOLUME_SET_MAX_LOCATIONS];
  struct missing_files *files;  /* records in directory locations */
  struct s3_missing *objects;   /* records in bucket locations */
  struct volume_set_store vs;
};

static bool
is_bucket (const struct s3_set_config *c, unsigned i)
{
  return c->loc[i].kind == S3_LOCATION_BUCKET;
}

/* The metadata of volume NAME at location I: 1, 0 if it is not there,
 * -1 if the location does not answer (WHY, if not NULL, says why).
 */
static int
read_meta (const struct s3_set_config *c, struct s3_client *client,
           unsigned i, const char *name, struct volume_meta *m,
           char *why)
{
  int r = is_bucket (c, i) ?
    s3_volume_read_meta (client, c->loc[i].prefix, name, m) :
    set_location_read_meta (c->loc[i].path, name, m);

  if (r == -1 && why)
    snprintf (why, 256, "%s: its volume '%s' cannot be read",
              c->p.loc_name[i], name);
  return r;
}

/* The locations of C, through CLIENTS, for volume_set_create. */
struct set_io {
  const struct s3_set_config *c;
  struct s3_client *const *clients;
};

static int
io_read_meta (void *opaque, unsigned i, const char *name,
              struct volume_meta *m)
{
  const struct set_io *io = opaque;
  return read_meta (io->c, io->clients[i], i, name, m, NULL);
}

static int
io_create_meta (void *opaque, unsigned i, const char *name,
                const struct volume_meta *m)
{
  const struct set_io *io = opaque;
  const struct s3_set_config *c = io->c;

  if (is_bucket (c, i))
    return s3_volume_create_meta (io->clients[i], c->loc[i].prefix, name, m);
  return set_location_create_meta (c->loc[i].path, name, m);
}

/* Create the set if it exists nowhere and CREATE asks for it. */
static int
create_set (const struct s3_set_config *c, struct s3_client *const *clients,
            const char *name, const struct volume_create *create)
{
  struct set_io sio = { c, clients };
  const struct volume_set_io io = { io_read_meta, io_create_meta, &sio };

  return volume_set_create (&c->p, name, create, &io);
}

int
s3_set_prepare (const struct s3_set_config *c,
                struct s3_client *const *clients, const char *name,
                const struct volume_create *create)
{
  struct volume_meta first, m;
  char why[VOLUME_SET_MAX_LOCATIONS][256];
  uint32_t up = 0;
  unsigned i;

  if (create_set (c, clients, name, create) == -1)
    return -1;
  /* A location that does not answer is not an error while enough do;
   * one that answers must be the right one.  (Whether another server
   * holds it is found at open: its lease or its lock.)
   */
  for (i = 0; i < c->p.nloc; ++i) {
    int r = read_meta (c, clients[i], i, name, &m, why[i]);
    if (r == 0) {
      nbdkit_error ("volume '%s' does not exist in %s", name,
                    c->p.loc_name[i]);
      errno = ENOENT;
      return -1;
    }
    if (r == -1)
      continue;
    if (volume_set_admit (&c->p, name, i, &m, &first, &up) == -1)
      return -1;
  }
  return volume_set_enough_up (&c->p, name, up, why);
}

/* Open the volume in bucket location I.  0 if it answers (*VP), 1 if
 * it does not (WHY), -1 if it must be refused (another server holds its
 * lease).
 */
static int
open_bucket (struct s3_set *s, unsigned i, struct s3_volume **vp,
             char why[256])
{
  const struct s3_set_location *l = &s->c.loc[i];
  struct s3_volume *v;

  v = s3_volume_open (l->client, l->prefix, s->name, s->readonly,
                      VOLUME_OPEN_SERVE | VOLUME_OPEN_LOCATION, NULL,
                      s->c.parallel, s->c.lease);
  if (v == NULL) {
    if (errno == EBUSY)
      return -1;
    snprintf (why, 256, "%s: volume '%s' there cannot be opened (%s)",
              s->c.p.loc_name[i], s->name, strerror (errno));
    return 1;
  }
  *vp = v;
  return 0;
}

/* Does bucket location I answer again?  Its metadata must still be the
 * set's, and (read-write) its lease still ours.  One that never
 * answered is opened now.
 */
static int
probe_bucket (struct s3_set *s, unsigned i)
{
  struct bucket_place *b = &s->bucket[i];
  const struct s3_set_location *l = &s->c.loc[i];
  struct s3_volume *v = __atomic_load_n (&b->v, __ATOMIC_ACQUIRE);
  struct volume_meta m;
  char why[256];
  int r;

  if (v == NULL) {
    r = open_bucket (s, i, &v, why);
    if (r != 0)
      return -1;
    if (volume_set_check_location (&s->c.p, s->name, i, &v->meta,
                                   &s->meta) == -1) {
      s3_volume_close (v);
      return -1;
    }
    __atomic_store_n (&b->v, v, __ATOMIC_RELEASE);
    nbdkit_debug ("%s: location %u (%s) answers: opened", s->name, i,
                  s->c.p.loc_name[i]);
    return 0;
  }
  r = s3_volume_read_meta (l->client, l->prefix, s->name, &m);
  if (r != 1)
    return -1;
  if (strcmp (m.uuid, s->meta.uuid) != 0 || m.set_index != i ||
      m.set_size != s->c.p.nloc) {
    if (!b->told)
      nbdkit_error ("%s: volume '%s' there is no longer this set's "
                    "location %u (uuid %s, location %" PRIu32 "): it stays "
                    "down", s->c.p.loc_name[i], s->name, i, m.uuid,
                    m.set_index);
    b->told = true;
    return -1;
  }
  b->told = false;
  if (v->lease && s3_lease_check (v->lease) == -1)
    return -1;
  return 0;
}

/* Does directory location I answer again?  As sharded-file's set. */
static int
probe_dir (struct s3_set *s, unsigned i)
{
  return set_location_probe (&s->dir[i], i, &s->c.p, &s->meta, s->name,
                             s->c.max_open_files, s->files);
}

static int
probe (void *opaque, unsigned loc)
{
  struct s3_set *s = opaque;
  return is_bucket (&s->c, loc) ? probe_bucket (s, loc) : probe_dir (s, loc);
}

static bool
moved (void *opaque, unsigned loc)
{
  struct s3_set *s = opaque;
  return !is_bucket (&s->c, loc) && set_location_moved (&s->dir[loc]);
}

/* The records, each kept where its holder is. */
static int
rec_load (void *opaque, unsigned holder, unsigned loc,
          void (*found) (void *arg, uint64_t n), void *arg)
{
  struct s3_set *s = opaque;
  if (is_bucket (&s->c, holder))
    return s3_missing_ops.load (s->objects, holder, loc, found, arg);
  return missing_file_ops.load (s->files, holder, loc, found, arg);
}

static int
rec_append (void *opaque, unsigned holder, unsigned loc, const uint64_t *ns,
            size_t count)
{
  struct s3_set *s = opaque;
  if (is_bucket (&s->c, holder))
    return s3_missing_ops.append (s->objects, holder, loc, ns, count);
  return missing_file_ops.append (s->files, holder, loc, ns, count);
}

static int
rec_clear (void *opaque, unsigned holder, unsigned loc)
{
  struct s3_set *s = opaque;
  if (is_bucket (&s->c, holder))
    return s3_missing_ops.clear (s->objects, holder, loc);
  return missing_file_ops.clear (s->files, holder, loc);
}

static const struct missing_log_ops records_ops = {
  .load = rec_load, .append = rec_append, .clear = rec_clear,
};

/* The store of bucket location I: the volume opened there, EIO while
 * there is none (the set never asks a location that is down).
 */
static struct s3_volume *
bucket_volume (void *opaque)
{
  struct bucket_place *b = opaque;
  struct s3_volume *v = __atomic_load_n (&b->v, __ATOMIC_ACQUIRE);

  if (v == NULL)
    errno = EIO;
  return v;
}

static int
bp_read (void *opaque, uint64_t n, void *buf, uint32_t len, uint32_t off)
{
  struct s3_volume *v = bucket_volume (opaque);
  return v ? v->store.ops->read (v->store.opaque, n, buf, len, off) : -1;
}

static int
bp_write (void *opaque, uint64_t n, const void *buf, uint32_t len,
          uint32_t off, bool fua)
{
  struct s3_volume *v = bucket_volume (opaque);
  return v ? v->store.ops->write (v->store.opaque, n, buf, len, off, fua)
    : -1;
}

static int
bp_remove (void *opaque, const uint64_t *ns, size_t count, bool fua)
{
  struct s3_volume *v = bucket_volume (opaque);
  return v ? v->store.ops->remove (v->store.opaque, ns, count, fua) : -1;
}

static int
bp_sync (void *opaque)
{
  struct s3_volume *v = bucket_volume (opaque);
  return v ? v->store.ops->sync (v->store.opaque) : -1;
}

static int
bp_list (void *opaque, void (*found) (void *opaque, uint64_t n), void *arg)
{
  struct s3_volume *v = bucket_volume (opaque);
  return v ? v->store.ops->list (v->store.opaque, found, arg) : -1;
}

static const struct chunk_store_ops bucket_place_ops = {
  .partial_write = false,       /* as the S3 store */
  .read = bp_read,
  .write = bp_write,
  .remove = bp_remove,
  .sync = bp_sync,
  .list = bp_list,
};

/* May this server still change bucket location H (its records)?  As a
 * chunk write: only while the lease is certainly its own.
 */
static int
bucket_may_change (void *opaque, unsigned h)
{
  struct s3_set *s = opaque;
  struct s3_volume *v = __atomic_load_n (&s->bucket[h].v, __ATOMIC_ACQUIRE);

  if (v == NULL) {
    errno = EIO;
    return -1;
  }
  return v->lease ? s3_lease_check (v->lease) : 0;
}

/* The records and the mirror or EC store over the locations. */
static int
open_store (struct s3_set *s, uint32_t down)
{
  struct volume_set_locations l = {
    .down = down, .log = &records_ops, .log_opaque = s,
    .readonly = s->readonly,
    .probe = probe, .moved = moved, .probe_opaque = s,
  };
  struct s3_client *clients[VOLUME_SET_MAX_LOCATIONS] = { NULL };
  const char *prefixes[VOLUME_SET_MAX_LOCATIONS] = { NULL };
  int dirfds[VOLUME_SET_MAX_LOCATIONS];
  uint64_t nr_chunks = (s->meta.size + s->meta.chunk_size - 1) /
    s->meta.chunk_size;
  unsigned i;

  for (i = 0; i < s->c.p.nloc; ++i) {
    dirfds[i] = -1;
    if (is_bucket (&s->c, i)) {
      clients[i] = s->c.loc[i].client;
      prefixes[i] = s->c.loc[i].prefix;
      l.store[i] = (struct chunk_store) { &bucket_place_ops, &s->bucket[i] };
    }
    else {
      dirfds[i] = s->dir[i].dirfd;
      l.store[i] = (struct chunk_store) { &set_location_ops, &s->dir[i] };
    }
  }
  s->files = missing_files_new (s->name, s->meta.uuid, s->c.p.nloc, dirfds,
                                s->c.p.loc_name, s->readonly);
  s->objects = s3_missing_new (s->name, s->meta.uuid, s->c.p.nloc, nr_chunks,
                               clients, prefixes, s->readonly);
  if (s->files == NULL || s->objects == NULL)
    return -1;
  s3_missing_set_guard (s->objects, bucket_may_change, s);
  if (volume_set_store_open (&s->vs, &s->c.p, s->name, &s->meta, &l) == -1)
    return -1;
  if (chunk_engine_set_parallelism (s->vs.engine, s->c.parallel) == -1)
    return -1;
  if (s->readonly || s->c.no_catch_up_thread)
    return 0;
  return volume_set_store_start (&s->vs, s->name);
}

struct s3_set *
s3_set_open (const struct s3_set_config *c, const char *name, bool readonly,
             const struct volume_create *create)
{
  struct s3_client *clients[VOLUME_SET_MAX_LOCATIONS];
  char why[VOLUME_SET_MAX_LOCATIONS][256];
  uint32_t up = 0;
  struct s3_set *s;
  unsigned i;

  s = calloc (1, sizeof *s);
  if (s == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  s->c = *c;
  s->readonly = readonly;
  for (i = 0; i < c->p.nloc; ++i) {
    s->dir[i].dirfd = -1;
    clients[i] = c->loc[i].client;
  }
  if ((s->name = strdup (name)) == NULL) {
    nbdkit_error ("strdup: %m");
    goto err;
  }
  if (!readonly && create_set (c, clients, name, create) == -1)
    goto err;
  /* Degraded open: a location that does not answer starts down (and is
   * probed, and caught up when it answers) while enough others do.
   */
  for (i = 0; i < c->p.nloc; ++i) {
    const struct volume_meta *m;
    int r;

    if (is_bucket (c, i)) {
      r = open_bucket (s, i, &s->bucket[i].v, why[i]);
      m = r == 0 ? &s->bucket[i].v->meta : NULL;
    }
    else {
      r = set_location_open (&s->dir[i], c->loc[i].path, name, readonly,
                             VOLUME_OPEN_SERVE, c->max_open_files);
      if (r == 1)
        memcpy (why[i], s->dir[i].why, sizeof why[i]);
      m = r == 0 ? &s->dir[i].v->meta : NULL;
    }
    if (r == -1)
      goto err;
    if (r == 1) {
      nbdkit_debug ("%s: location %u did not answer: %s: it starts down",
                    name, i, why[i]);
      continue;
    }
    if (volume_set_admit (&c->p, name, i, m, &s->meta, &up) == -1)
      goto err;
  }
  if (volume_set_enough_up (&c->p, name, up, why) == -1 ||
      volume_check_create (name, c->p.loc_name[__builtin_ctz (up)],
                           &s->meta, create) == -1 ||
      open_store (s, ~up & ((UINT32_C (1) << c->p.nloc) - 1)) == -1)
    goto err;
  return s;

 err:
  s3_set_close (s);
  return NULL;
}

void
s3_set_close (struct s3_set *s)
{
  unsigned i;

  if (s == NULL)
    return;
  volume_set_store_close (&s->vs);
  missing_files_free (s->files);
  s3_missing_free (s->objects);
  for (i = 0; i < s->c.p.nloc; ++i) {
    s3_volume_close (s->bucket[i].v);
    if (s->dir[i].path)
      set_location_close (&s->dir[i]);
  }
  free (s->name);
  free (s);
}

struct chunk_engine *
s3_set_engine (struct s3_set *s)
{
  return s->vs.engine;
}

const struct volume_meta *
s3_set_meta (struct s3_set *s)
{
  return &s->meta;
}

struct volume_set_store *
s3_set_store (struct s3_set *s)
{
  return &s->vs;
}

struct chunk_store
s3_set_location_store (struct s3_set *s, unsigned i)
{
  if (is_bucket (&s->c, i))
    return (struct chunk_store) { &bucket_place_ops, &s->bucket[i] };
  return (struct chunk_store) { &set_location_ops, &s->dir[i] };
}
