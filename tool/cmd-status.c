/* shardkit volume tool: status WHERE NAME, the health of each location
 * of a set (WHERE = LOC1,LOC2,..., directories and buckets,
 * set-where.h).
 * GPL-3.0-or-later.
 *
 * It only looks, taking no lock or lease (a server may be running):
 * for each location, whether it answers (a directory is there, a
 * bucket answers), whether its metadata is the set's (uuid, place),
 * how far behind it is, and who holds it (a directory's lock, a
 * bucket's lease).  How far behind comes from the records the others
 * keep of what it lacks (NAME.missing.L in each other location: a
 * file in a directory, missing-file.h; an object in a bucket,
 * s3-missing.h): the distinct chunk numbers in all of them (a record
 * of every chunk, a full resync, counts the volume's chunks), times the
 * chunk size; the age of the oldest record is the earliest start time
 * among them.  A server's records reach the files before the writes they
 * describe are acknowledged, so status never says less than the server
 * knows; the catch-up's copies show once it empties the records.
 *
 * Exit 0 when every location is there, right and behind in nothing; 1
 * otherwise; 2 when the volume cannot be read at all.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "commands.h"
#include "missing-file.h"
#include "s3-missing.h"
#include "set-where.h"
#include "tool.h"
#include "volume-meta.h"
#include "where.h"

struct loc_status {
  int meta;                     /* 1 read, 0 none, -1 unreadable */
  bool reachable, meta_ok;
  char why[256];                /* what is wrong with it */
  uint64_t lacking;             /* distinct chunks */
  int64_t oldest;               /* start of its oldest record, 0: none */
  char held[512];               /* who holds it, "" nobody */
  int fd;                       /* a directory's, else -1 */
};

struct lacking_map {
  uint8_t *bits;
  uint64_t nr_chunks;
  bool all;
};

static void
found (void *arg, uint64_t n)
{
  struct lacking_map *l = arg;

  if (n == MISSING_ALL)
    l->all = true;
  else if (n < l->nr_chunks)
    l->bits[n >> 3] |= (uint8_t) (1u << (n & 7));
}

/* The records, in directories and in buckets. */
struct records {
  const struct set_where *s;
  struct missing_files *files;
  struct s3_missing *objects;
};

/* The record on HOLDER of what LOC lacks into L; its start time into
 * *T.  1, 0 none, -1 after an error.
 */
static int
read_record (const struct records *rec, unsigned holder, unsigned loc,
             struct lacking_map *l, int64_t *t)
{
  struct s3_missing_info info;
  int r;

  if (!rec->s->is_bucket[holder]) {
    if (missing_file_ops.load (rec->files, holder, loc, found, l) == -1)
      return -1;
    return missing_file_started (rec->files, holder, loc, t);
  }
  r = s3_missing_read (rec->objects, holder, loc, found, l, &info);
  if (r == 1) {
    nbdkit_debug ("%s: record of what location %u lacks: %" PRIu64
                  " chunk(s)%s, started at %" PRId64,
                  rec->s->path[holder], loc, info.chunks,
                  info.all ? ", every chunk" : "", info.started);
    *t = info.started;
  }
  return r;
}

/* What location LOC lacks per the records on the others. */
static int
read_records (const struct records *rec, struct loc_status *st,
              unsigned nloc, unsigned loc, uint64_t nr_chunks)
{
  const size_t bytes = (size_t) ((nr_chunks + 7) / 8);
  CLEANUP_FREE uint8_t *bits = calloc (bytes ? bytes : 1, 1);
  struct lacking_map l = { .bits = bits, .nr_chunks = nr_chunks };
  unsigned h;
  uint64_t n;

  if (bits == NULL) {
    tool_error ("calloc: %m");
    return -1;
  }
  for (h = 0; h < nloc; ++h) {
    int64_t t;
    int r;

    if (h == loc || !st[h].meta_ok)
      continue;
    if ((r = read_record (rec, h, loc, &l, &t)) == -1)
      return -1;
    if (r == 1 && (st[loc].oldest == 0 || t < st[loc].oldest))
      st[loc].oldest = t;
  }
  if (l.all)
    st[loc].lacking = nr_chunks;
  else
    for (n = 0; n < nr_chunks; ++n)
      st[loc].lacking += (bits[n >> 3] >> (n & 7)) & 1;
  return 0;
}

/* Who holds location I (BUF, "" nobody): whether it answered. */
static bool
holder (struct set_where *s, unsigned i, const char *name, char *buf,
        size_t len)
{
  int r;

  error_capture_begin ();
  r = set_where_holder (s, i, name, buf, len);
  if (r != 1)
    buf[0] = '\0';
  error_capture_end ();
  return r != -1;
}

static void
print_json (const char *name, const struct set_where *s,
            const struct volume_meta *ref, const struct loc_status *st,
            bool healthy, time_t now)
{
  unsigned i;

  printf ("{\"name\":");
  json_string (stdout, name);
  printf (",\"size\":%" PRIu64 ",\"chunk_size\":%" PRIu32
          ",\"redundancy\":", ref->size, ref->chunk_size);
  json_string (stdout, ref->set_size ? ref->redundancy : "none");
  printf (",\"healthy\":%s,\"locations\":[", healthy ? "true" : "false");
  for (i = 0; i < s->n; ++i) {
    printf ("%s{\"index\":%u,\"path\":", i ? "," : "", i);
    json_string (stdout, s->path[i]);
    printf (",\"reachable\":%s,\"metadata_ok\":%s",
            st[i].reachable ? "true" : "false",
            st[i].meta_ok ? "true" : "false");
    if (st[i].why[0]) {
      printf (",\"problem\":");
      json_string (stdout, st[i].why);
    }
    printf (",\"lacking_chunks\":%" PRIu64 ",\"bytes_behind\":%" PRIu64
            ",\"oldest_record_age\":", st[i].lacking,
            st[i].lacking * ref->chunk_size);
    if (st[i].oldest)
      printf ("%" PRId64, (int64_t) now - st[i].oldest);
    else
      printf ("null");
    printf (",\"held_by\":");
    if (st[i].held[0])
      json_string (stdout, st[i].held);
    else
      printf ("null");
    printf ("}");
  }
  printf ("]}\n");
}

static void
print_text (const char *name, const struct set_where *s,
            const struct volume_meta *ref, const struct loc_status *st,
            bool healthy, time_t now)
{
  char h1[32], h2[32];
  unsigned i;

  printf ("%s: %s, %u location%s, %s chunks of %s: %s\n", name,
          human_size (ref->size, h1, sizeof h1), s->n, s->n == 1 ? "" : "s",
          ref->set_size ? ref->redundancy : "no redundancy",
          human_size (ref->chunk_size, h2, sizeof h2),
          healthy ? "healthy" : "DEGRADED");
  for (i = 0; i < s->n; ++i) {
    printf ("  %u %s: %s", i, s->path[i],
            !st[i].reachable ? "unreachable" :
            st[i].meta_ok ? "up" : "bad metadata");
    if (st[i].why[0])
      printf (" (%s)", st[i].why);
    if (st[i].lacking) {
      printf (", lacks %" PRIu64 " chunk%s (%s behind", st[i].lacking,
              st[i].lacking == 1 ? "" : "s",
              human_size (st[i].lacking * ref->chunk_size, h1, sizeof h1));
      if (st[i].oldest)
        printf (", oldest record %" PRId64 "s old",
                (int64_t) now - st[i].oldest);
      printf (")");
    }
    else
      printf (", up to date");
    if (st[i].held[0])
      printf (", %s", st[i].held);
    printf ("\n");
  }
}

int
cmd_status (struct where *w, char **args)
{
  const char *name = args[0];
  struct set_where s;
  struct volume_meta m[MIRROR_MAX_LOCATIONS];
  struct loc_status st[MIRROR_MAX_LOCATIONS] = { 0 };
  char why[MIRROR_MAX_LOCATIONS][256];
  int ok[MIRROR_MAX_LOCATIONS], dirfds[MIRROR_MAX_LOCATIONS];
  const char *names[MIRROR_MAX_LOCATIONS];
  struct s3_client *clients[MIRROR_MAX_LOCATIONS] = { NULL };
  const char *prefixes[MIRROR_MAX_LOCATIONS] = { NULL };
  struct records rec = { .s = &s };
  bool healthy = true;
  uint64_t nr_chunks;
  const time_t now = time (NULL);
  int first, r = EXIT_ERROR;
  unsigned i;

  for (i = 0; i < MIRROR_MAX_LOCATIONS; ++i)
    st[i].fd = -1;
  if (set_where_parse (w->display, &s) == -1)
    goto out;
  first = set_where_read_meta (&s, name, m, ok, why);
  if (first == -1)
    goto out;
  nr_chunks = (m[first].size + m[first].chunk_size - 1) / m[first].chunk_size;
  for (i = 0; i < s.n; ++i) {
    const struct volume_meta *ref = &m[first];

    if (s.is_bucket[i])
      clients[i] = where_s3_client (&s.bucket[i], &prefixes[i]);
    else
      st[i].fd = open (s.path[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    st[i].reachable = st[i].fd >= 0;
    dirfds[i] = st[i].fd;
    names[i] = s.path[i];
    st[i].meta_ok = ok[i] == 1 && strcmp (m[i].uuid, ref->uuid) == 0 &&
      m[i].set_size == ref->set_size && m[i].set_index == (ref->set_size ?
                                                           i : 0);
    if (ok[i] != 1)
      snprintf (st[i].why, sizeof st[i].why, "%s", why[i]);
    else if (strcmp (m[i].uuid, ref->uuid) != 0)
      snprintf (st[i].why, sizeof st[i].why, "another volume: uuid %s, "
                "location %u's is %s", m[i].uuid, first, ref->uuid);
    else if (!st[i].meta_ok)
      snprintf (st[i].why, sizeof st[i].why, "location %" PRIu32 " of a set "
                "of %" PRIu32 ", given as location %u", m[i].set_index,
                m[i].set_size, i);
    /* A bucket answers if its metadata or its lease could be read
     * (its metadata may be what is wrong).
     */
    if (s.is_bucket[i])
      st[i].reachable = holder (&s, i, name, st[i].held, sizeof st[i].held)
        || ok[i] != -1;
    else if (st[i].reachable)
      holder (&s, i, name, st[i].held, sizeof st[i].held);
  }
  if (s.n > 1) {
    rec.files = missing_files_new (name, m[first].uuid, s.n, dirfds, names,
                                   true);
    if (rec.files == NULL)
      goto out;
    if (s.buckets &&
        (rec.objects = s3_missing_new (name, m[first].uuid, s.n, nr_chunks,
                                       clients, prefixes, true)) == NULL)
      goto out;
    for (i = 0; i < s.n; ++i)
      if (read_records (&rec, st, s.n, i, nr_chunks) == -1)
        goto out;
  }
  for (i = 0; i < s.n; ++i)
    if (!st[i].reachable || !st[i].meta_ok || st[i].lacking)
      healthy = false;
  if (opts.json)
    print_json (name, &s, &m[first], st, healthy, now);
  else
    print_text (name, &s, &m[first], st, healthy, now);
  r = healthy ? EXIT_OK : EXIT_PROBLEMS;
 out:
  missing_files_free (rec.files);
  s3_missing_free (rec.objects);
  for (i = 0; i < s.n; ++i)
    if (st[i].fd >= 0)
      close (st[i].fd);
  set_where_free (&s);
  return r;
}
