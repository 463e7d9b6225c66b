/* shardkit volume tool: scrub WHERE NAME, compare every copy of every
 * chunk of a set and repair what differs or lacks (WHERE =
 * DIR1,DIR2,..., set-where.h).
 * GPL-3.0-or-later.
 *
 * The set is opened read-write as the plugin opens it (file-set.h:
 * every location's lock, refused while a server holds one, naming it),
 * with every location: a scrub that cannot see a copy cannot judge it.
 * Then:
 *
 *  1. the catch-up of the mirror (mirror-store.h) copies every chunk
 *     the records say a location lacks, and empties the records: those
 *     copies are stale by the records' word, whatever they hold;
 *  2. every chunk that some location holds is read from each location
 *     and the copies compared byte for byte (the mirror keeps no digest
 *     per copy on files).  Where they differ, a version held by more
 *     than half of the locations is the good one; copies that could not
 *     be read count for nothing, so that a single readable version
 *     wins too.  The others are rewritten from it, or removed when the
 *     good version is "no such chunk" (a stray).  With no majority (two
 *     locations that disagree, three that all differ) nothing is
 *     touched: a problem reported, exit 1;
 *  3. every location is synced.
 *
 * --jobs=N compares N chunks at once.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "commands.h"
#include "file-set.h"
#include "mirror-store.h"
#include "parallel.h"
#include "set-where.h"
#include "tool.h"
#include "where.h"

#define TOOL_MAX_OPEN_FILES 64

struct scrub {
  struct file_set *set;
  unsigned nloc;
  uint64_t size;
  uint32_t chunk_size;
  uint64_t nr_chunks;
  uint8_t *held;                /* a bit per chunk: some location has it */
  struct chunk_store loc[MIRROR_MAX_LOCATIONS];
  _Atomic uint64_t next, compared, rewritten, restored, removed;
  struct problems problems;
};

static void
found (void *opaque, uint64_t n)
{
  struct scrub *c = opaque;

  if (n < c->nr_chunks)
    __atomic_fetch_or (&c->held[n >> 3], (uint8_t) (1u << (n & 7)),
                       __ATOMIC_RELAXED);
}

/* The copies of chunk n in BUF[i] (R[i]: 0 data, 1 none, -1 unread):
 * is copy I the same version as copy J?
 */
static bool
same (int const *r, void *const *buf, uint32_t span, unsigned i, unsigned j)
{
  return r[i] == r[j] && (r[i] == 1 || memcmp (buf[i], buf[j], span) == 0);
}

/* Repair copy I of chunk n from version GOOD. */
static void
repair (struct scrub *c, uint64_t n, const int *r, void *const *buf,
        uint32_t span, unsigned i, unsigned good)
{
  const struct chunk_store *s = &c->loc[i];
  char what[160];
  int ret;

  error_capture_begin ();
  if (r[good] == 1)
    ret = s->ops->remove (s->opaque, &n, 1, false);
  else
    ret = s->ops->write (s->opaque, n, buf[good], span, 0, false);
  if (ret == -1) {
    snprintf (what, sizeof what, "location %u: repair failed: %s", i,
              error_capture_end ());
    problems_add (&c->problems, n, what);
    return;
  }
  error_capture_end ();
  if (r[good] == 1)
    atomic_fetch_add (&c->removed, 1);
  else if (r[i] == 1)
    atomic_fetch_add (&c->restored, 1);
  else
    atomic_fetch_add (&c->rewritten, 1);
}

static void
compare (struct scrub *c, uint64_t n, void **buf)
{
  const uint32_t span = chunk_span_of (c->size, c->chunk_size, n);
  int r[MIRROR_MAX_LOCATIONS];
  unsigned i, j, votes, best = 0, best_votes = 0, versions = 0;
  bool differ = false;

  for (i = 0; i < c->nloc; ++i) {
    error_capture_begin ();
    r[i] = c->loc[i].ops->read (c->loc[i].opaque, n, buf[i], span, 0);
    error_capture_end ();
  }
  /* The version held by most readable copies. */
  for (i = 0; i < c->nloc; ++i) {
    if (r[i] == -1) {
      differ = true;
      continue;
    }
    for (j = 0; j < i && !(r[j] != -1 && same (r, buf, span, i, j)); ++j)
      ;
    if (j < i)
      continue;                 /* counted with copy j */
    versions++;
    for (votes = 0, j = i; j < c->nloc; ++j)
      votes += r[j] != -1 && same (r, buf, span, i, j);
    if (votes > best_votes) {
      best = i;
      best_votes = votes;
    }
  }
  differ = differ || versions > 1;
  if (!differ)
    return;
  if (versions == 0 ||
      (versions > 1 && 2 * best_votes <= c->nloc)) {
    char what[200];
    snprintf (what, sizeof what, "the %u copies differ%s and no majority "
              "says which is good: not repaired", c->nloc,
              versions == 0 ? " (none could be read)" : "");
    problems_add (&c->problems, n, what);
    return;
  }
  for (i = 0; i < c->nloc; ++i)
    if (r[i] == -1 || !same (r, buf, span, i, best))
      repair (c, n, r, buf, span, i, best);
}

static void *
worker (void *arg)
{
  struct scrub *c = arg;
  void *buf[MIRROR_MAX_LOCATIONS] = { NULL };
  unsigned i;
  uint64_t n;

  for (i = 0; i < c->nloc; ++i)
    if ((buf[i] = malloc (c->chunk_size)) == NULL) {
      problems_fail (&c->problems);
      goto out;
    }
  while ((n = atomic_fetch_add (&c->next, 1)) < c->nr_chunks) {
    if (!(c->held[n >> 3] & (1u << (n & 7))))
      continue;
    compare (c, n, buf);
    atomic_fetch_add (&c->compared, 1);
    progress_add (1);
  }
 out:
  for (i = 0; i < c->nloc; ++i)
    free (buf[i]);
  return NULL;
}

/* Refuse, naming the holder, while anybody holds a location (of those
 * whose metadata could be read: OK; the others fail the open).
 */
static int
check_not_served (const struct set_where *s, const char *name, const int *ok)
{
  unsigned i;

  for (i = 0; i < s->n; ++i) {
    struct where w;
    char who[512];
    int r;

    if (ok[i] != 1)
      continue;
    memset (&w, 0, sizeof w);
    r = where_dir_open (s->path[i], &w);
    if (r == 0)
      r = w.ops->holder (&w, name, who, sizeof who);
    where_close (&w);
    if (r == -1)
      return -1;
    if (r == 1) {
      tool_error ("volume '%s' in %s is in use: %s", name, s->path[i], who);
      return -1;
    }
  }
  return 0;
}

static uint64_t
count_held (const struct scrub *c)
{
  uint64_t n, k = 0;

  for (n = 0; n < c->nr_chunks; ++n)
    k += (c->held[n >> 3] >> (n & 7)) & 1;
  return k;
}

static void
report (const struct scrub *c, const char *name, uint64_t caught_up)
{
  size_t i;

  for (i = 0; i < c->problems.len; ++i)
    printf ("%s: chunk %" PRIu64 ": %s\n", name, c->problems.v[i].chunk,
            c->problems.v[i].what);
  printf ("scrub %s: %u locations, %" PRIu64 " chunks compared; repaired: %"
          PRIu64 " copied from the records, %" PRIu64 " rewritten (differed), "
          "%" PRIu64 " restored (missing), %" PRIu64 " removed (stray); %zu "
          "not repaired: %s\n", name, c->nloc, (uint64_t) c->compared,
          caught_up, (uint64_t) c->rewritten, (uint64_t) c->restored,
          (uint64_t) c->removed, c->problems.len,
          c->problems.len ? "BAD" : "ok");
}

int
cmd_scrub (struct where *w, char **args)
{
  const char *name = args[0];
  struct set_where s;
  struct volume_meta m[MIRROR_MAX_LOCATIONS];
  char why[MIRROR_MAX_LOCATIONS][256];
  int ok[MIRROR_MAX_LOCATIONS];
  struct file_set_config fc = { 0 };
  struct scrub c = { 0 };
  struct mirror_store *mirror;
  uint64_t caught_up = 0;
  char label[300];
  int r = EXIT_ERROR;
  unsigned i;

  problems_init (&c.problems);
  if (set_where_parse (w->display, &s) == -1)
    return EXIT_ERROR;
  if (set_where_read_meta (&s, name, m, ok, why) == -1 ||
      check_not_served (&s, name, ok) == -1)
    goto out;
  for (i = 0; i < s.n; ++i)
    if (ok[i] == 1 && m[i].ec_k) {
      tool_error ("volume '%s' is erasure-coded (ec:%u+%u): scrub compares "
                  "the copies of a mirror and does not rebuild fragments "
                  "yet (reads repair a fragment that fails its digest)",
                  name, (unsigned) m[i].ec_k, (unsigned) m[i].ec_m);
      goto out;
    }
  if (s.n == 1) {
    tool_error ("volume '%s' in %s has one location: nothing to compare "
                "(shardkit check reads it)", name, s.path[0]);
    goto out;
  }
  /* Every location must answer: write quorum 1 (mirror_store_min_up),
   * and writes go to all of them.
   */
  fc.nloc = s.n;
  for (i = 0; i < s.n; ++i) {
    fc.dirnames[i] = s.path[i];
    fc.dirfds[i] = -1;
  }
  fc.mode = MIRROR_SYNC;
  fc.write_quorum = 1;
  fc.max_open_files = TOOL_MAX_OPEN_FILES;
  fc.no_catch_up_thread = true;
  c.set = file_set_open (&fc, name, false, NULL);
  if (c.set == NULL)
    goto out;
  mirror = file_set_mirror (c.set);
  c.nloc = s.n;
  c.size = file_set_meta (c.set)->size;
  c.chunk_size = file_set_meta (c.set)->chunk_size;
  c.nr_chunks = (c.size + c.chunk_size - 1) / c.chunk_size;
  for (i = 0; i < s.n; ++i) {
    if (!mirror_store_is_up (mirror, i)) {
      tool_error ("volume '%s': location %u (%s) does not answer: scrub "
                  "needs every location", name, i, s.path[i]);
      goto out;
    }
    c.loc[i] = file_set_location_store (c.set, i);
  }

  /* 1. What the records say each location lacks. */
  for (i = 0; i < s.n; ++i)
    caught_up += mirror_store_lacking (mirror, i);
  if (caught_up && mirror_store_catch_up (mirror) != 0) {
    tool_error ("volume '%s': the copies the records ask for could not all "
                "be made", name);
    goto out;
  }

  /* 2. Every chunk some location holds, copy against copy. */
  c.held = calloc ((size_t) ((c.nr_chunks + 7) / 8) + 1, 1);
  if (c.held == NULL) {
    tool_error ("calloc: %m");
    goto out;
  }
  for (i = 0; i < s.n; ++i)
    if (c.loc[i].ops->list (c.loc[i].opaque, found, &c) == -1)
      goto out;
  snprintf (label, sizeof label, "scrub %s", name);
  progress_start (label, count_held (&c));
  run_workers (opts.jobs ? opts.jobs : 1, worker, &c);
  progress_end ();
  if (c.problems.failed) {
    tool_error ("out of memory");
    goto out;
  }

  /* 3. Durable. */
  for (i = 0; i < s.n; ++i)
    if (c.loc[i].ops->sync (c.loc[i].opaque) == -1)
      goto out;
  problems_sort (&c.problems);
  report (&c, name, caught_up);
  r = c.problems.len ? EXIT_PROBLEMS : EXIT_OK;
 out:
  file_set_close (c.set);
  free (c.held);
  problems_free (&c.problems);
  set_where_free (&s);
  return r;
}
