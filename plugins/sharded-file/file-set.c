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

#define BIT(i) (UINT32_C (1) << (i))

struct file_set {
  unsigned nloc;
  struct file_volume *loc[MIRROR_MAX_LOCATIONS]; /* one location */
  /* Several locations only: */
  struct file_set_config c;
  char *name;
  struct volume_meta meta;      /* of the first location that answered */
  struct set_location place[MIRROR_MAX_LOCATIONS];
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
  uint32_t exists = 0, silent = 0;
  struct volume_meta m;
  unsigned i;

  /* A location that does not answer (directory gone, metadata
   * unreadable) is left to the open, which may go on without it.
   */
  for (i = 0; i < c->nloc; ++i) {
    CLEANUP_CLOSE int fd = open (c->dirnames[i],
                                 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = fd == -1 ? -1 :
      file_volume_read_meta (fd, c->dirnames[i], name, &m);
    if (r == -1)
      silent |= BIT (i);
    if (r == 1)
      exists |= BIT (i);
  }
  if (exists) {
    for (i = 0; i < c->nloc; ++i)
      if (!(exists & BIT (i)) && !(silent & BIT (i))) {
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
  if (silent) {
    nbdkit_error ("volume '%s' cannot be created: %s does not answer (the "
                  "locations of a set are created together)", name,
                  c->dirnames[__builtin_ctz (silent)]);
    errno = EIO;
    return -1;
  }
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
    CLEANUP_CLOSE int fd = open (c->dirnames[i],
                                 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    m.set_index = i;
    if (fd == -1) {
      nbdkit_error ("%s: %m", c->dirnames[i]);
      return -1;
    }
    if (file_volume_create_meta (fd, c->dirnames[i], name, &m) == -1)
      return -1;
  }
  return 0;
}

/* The fewest locations that must answer (mirror-store.h, ec-store.h). */
static unsigned
min_up (const struct file_set_config *c)
{
  if (c->ec_k)
    return ec_store_min_up (c->ec_k, c->ec_m,
                            c->ec_min_write ? c->ec_min_write :
                            c->ec_m ? c->ec_k + 1 : c->ec_k);
  return mirror_store_min_up (c->nloc, c->mode == MIRROR_ASYNC ? 1 :
                              c->write_quorum ? c->write_quorum : c->nloc);
}

/* Enough of them answered (the bits of UP), or one line naming those
 * that did not, with why (WHY[i]).
 */
static int
enough_up (const struct file_set_config *c, const char *name, uint32_t up,
           char why[][256])
{
  char list[1024] = "";
  size_t used = 0;
  unsigned i;

  if ((unsigned) __builtin_popcount (up) >= min_up (c))
    return 0;
  for (i = 0; i < c->nloc; ++i)
    if (!(up & BIT (i)) && used < sizeof list)
      used += (size_t) snprintf (list + used, sizeof list - used, "%s%s",
                                 used ? "; " : "", why[i]);
  if (c->ec_k)
    nbdkit_error ("volume '%s': %d of %u locations answer, fewer than the "
                  "%u it needs (ec:%u+%u): did not answer: %s", name,
                  __builtin_popcount (up), c->nloc, min_up (c), c->ec_k,
                  c->ec_m, list);
  else
    nbdkit_error ("volume '%s': %d of %u locations answer, fewer than the "
                  "%u it needs (write-quorum=%u): did not answer: %s", name,
                  __builtin_popcount (up), c->nloc, min_up (c),
                  c->mode == MIRROR_ASYNC ? 1 :
                  c->write_quorum ? c->write_quorum : c->nloc, list);
  errno = EIO;
  return -1;
}

int
file_set_prepare (const struct file_set_config *c, const char *name,
                  const struct volume_create *create)
{
  struct volume_meta first, m;
  char why[MIRROR_MAX_LOCATIONS][256];
  uint32_t up = 0;
  unsigned i;

  if (c->nloc == 1)
    return file_volume_prepare (c->dirfds[0], c->dirnames[0], name, create);
  if (create_set (c, name, create) == -1)
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
        file_volume_read_meta (fd, c->dirnames[i], name,
                               up ? &m : &first) != 1) {
      if (errno == EWOULDBLOCK)
        return -1;
      snprintf (why[i], sizeof why[i], "%s: its volume '%s' cannot be "
                "read", c->dirnames[i], name);
      continue;
    }
    if (check_location (c, name, i, up ? &m : &first, &first) == -1)
      return -1;
    up |= BIT (i);
  }
  return enough_up (c, name, up, why);
}

/* Does location LOC answer again (mirror_config.probe)?  Where its
 * path names the directory held, as file_volume_probe says.  Where it
 * never answered, or its path names another directory now, the volume
 * is opened there afresh and checked; a location down since the open
 * lacks what the records say (loaded from the others), one that came
 * back as another directory may be any old copy: caught up in full.
 */
static int
probe (void *opaque, unsigned loc)
{
  struct file_set *s = opaque;
  struct set_location *l = &s->place[loc];
  struct file_volume *v;
  bool was_open = l->v != NULL;
  int fd;

  if (!set_location_moved (l))
    return file_volume_probe (l->v);
  v = set_location_reopen (l, s->name, s->c.max_open_files, &fd);
  if (v == NULL)
    return -1;
  if (check_location (&s->c, s->name, loc, &v->meta, &s->meta) == -1) {
    file_volume_close (v);
    close (fd);
    return -1;
  }
  if (set_location_install (l, v, fd) == -1)
    return -1;                  /* closed V */
  missing_files_set_dirfd (s->records, loc, fd);
  nbdkit_debug ("%s: location %u (%s) opened again%s", s->name, loc,
                l->path, was_open ? " (another directory: caught up in "
                "full)" : "");
  return was_open ? 1 : 0;
}

static bool
moved (void *opaque, unsigned loc)
{
  struct file_set *s = opaque;
  return set_location_moved (&s->place[loc]);
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
new_ec (struct file_set *s, const struct file_set_config *c, const char *name,
        uint32_t down)
{
  const struct volume_meta *m = &s->meta;
  struct ec_config ec = {
    .k = c->ec_k, .m = c->ec_m, .min_write = c->ec_min_write,
    .down = down, .threads = c->threads,
    .log = &missing_file_ops, .log_opaque = s->records,
    .probe = probe, .moved = moved, .probe_opaque = s,
  };
  unsigned i;

  for (i = 0; i < c->nloc; ++i) {
    ec.loc[i] = (struct chunk_store) { &set_location_ops, &s->place[i] };
    ec.loc_name[i] = c->dirnames[i];
  }
  s->ec = ec_store_new (name, &ec, m->size, m->chunk_size);
  return s->ec ? 0 : -1;
}

/* Several locations: the mirror over them, and its catch-up thread. */
static int
open_mirror (struct file_set *s, const struct file_set_config *c,
             const char *name, bool readonly, uint32_t down)
{
  const struct volume_meta *m = &s->meta;
  int dirfds[MIRROR_MAX_LOCATIONS];
  struct mirror_config mc = {
    .down = down,
    .nloc = c->nloc,
    .mode = c->mode,
    .write_quorum = c->write_quorum ? c->write_quorum : c->nloc,
    .durable_all = c->durable_all,
    .threads = c->threads,
    .log = &missing_file_ops,
    .probe = probe,
    .moved = moved,
    .probe_opaque = s,
  };
  struct chunk_store store;
  unsigned i;
  int err;

  for (i = 0; i < c->nloc; ++i)
    dirfds[i] = s->place[i].dirfd;
  s->records = missing_files_new (name, m->uuid, c->nloc, dirfds,
                                  c->dirnames, readonly);
  if (s->records == NULL)
    return -1;
  mc.log_opaque = s->records;
  if (c->ec_k) {
    if (new_ec (s, c, name, down) == -1)
      return -1;
    store = ec_store_as_store (s->ec);
  }
  else {
    for (i = 0; i < c->nloc; ++i) {
      mc.loc[i] = (struct chunk_store) { &set_location_ops, &s->place[i] };
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
  if (readonly || c->no_catch_up_thread)
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

  s->c = *c;
  if ((s->name = strdup (name)) == NULL) {
    nbdkit_error ("strdup: %m");
    goto err;
  }
  if (!readonly && create_set (c, name, create) == -1)
    goto err;
  /* Degraded open: a location that does not answer starts down (and is
   * probed, and caught up when it answers) while enough others do.
   */
  {
    char why[MIRROR_MAX_LOCATIONS][256];
    uint32_t up = 0;
    int first = -1;

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
      if (first == -1) {
        first = (int) i;
        s->meta = l->v->meta;
      }
      if (check_location (c, name, i, &l->v->meta, &s->meta) == -1)
        goto err;
      up |= BIT (i);
    }
    if (enough_up (c, name, up, why) == -1 ||
        volume_check_create (name, c->dirnames[first], &s->meta,
                             create) == -1 ||
        open_mirror (s, c, name, readonly, ~up & ((1u << c->nloc) - 1)) == -1)
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
  return s->mirror;
}

struct chunk_store
file_set_location_store (struct file_set *s, unsigned i)
{
  if (s->nloc == 1)
    return s->loc[0]->store;
  return (struct chunk_store) { &set_location_ops, &s->place[i] };
}
