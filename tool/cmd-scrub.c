/* shardkit volume tool: scrub WHERE NAME, compare every copy of every
 * chunk of a set and repair what differs or lacks (WHERE =
 * LOC1,LOC2,..., directories and buckets, set-where.h).
 * GPL-3.0-or-later.
 *
 * The set is opened read-write as the plugin opens it, with every
 * location: a scrub that cannot see a copy cannot judge it.  A set of
 * directories as sharded-file opens it (file-set.h: every location's
 * lock), one with buckets as s3-object does (s3-set.h: each bucket's
 * lease, each directory's lock); refused while a server holds any,
 * naming it.  Either way the scrub below works on what both give: the
 * redundant store (struct volume_set_store, volume-set.h) and each
 * location's own store.  Then:
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
 * An erasure-coded set (redundancy=ec:K+M, ec-store.h) has no copies to
 * compare: each fragment carries its own digest (its trailer and a
 * CRC32C per 64 KiB).  There, after the same catch-up (1: it rebuilds
 * the fragments the records say a location lacks), every chunk some
 * location holds a fragment of is scrubbed by the EC store itself
 * (ec_store_scrub_chunk, under the chunk's exclusive copy lock): every
 * fragment read whole and checked, and those that fail, cannot be
 * read, are of another write than K good ones, or are missing, rebuilt
 * from K good ones and rewritten.  A chunk with fragments on fewer than
 * K locations (what a write or removal cut short by a crash leaves: the
 * volume reads it as absent) is reported and left as it is: those
 * fragments may be all that is left of a chunk that lost more than M.
 * One with K or more but fewer than K good ones of one write cannot be
 * rebuilt: reported, nothing changed, exit 1.
 *
 * --jobs=N scrubs N chunks at once.  --json: one document (the same
 * for both kinds of set).
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
#include "ec-store.h"
#include "file-set.h"
#include "mirror-store.h"
#include "parallel.h"
#include "s3-lease.h"
#include "s3-set.h"
#include "set-where.h"
#include "tool.h"
#include "where.h"

#define TOOL_MAX_OPEN_FILES 64
#define BIT(i) (UINT32_C (1) << (i))
#define COUNT(mask) ((unsigned) __builtin_popcount (mask))

struct scrub {
  struct volume_set_store *vs;  /* the set's redundant store */
  struct ec_store *ec;          /* erasure coding, or NULL: a mirror */
  unsigned k, m;                /* ec:K+M */
  unsigned nloc;
  const char *const *where;     /* the locations' names */
  uint64_t size;
  uint32_t chunk_size;
  uint64_t nr_chunks;
  uint8_t *held;                /* a bit per chunk: some location has it */
  struct chunk_store loc[MIRROR_MAX_LOCATIONS];
  _Atomic uint64_t next, compared, rewritten, restored, removed, cut_short;
  /* The same per location, and what the records said each lacked. */
  _Atomic uint64_t loc_rewritten[MIRROR_MAX_LOCATIONS];
  _Atomic uint64_t loc_restored[MIRROR_MAX_LOCATIONS];
  _Atomic uint64_t loc_removed[MIRROR_MAX_LOCATIONS];
  uint64_t loc_caught_up[MIRROR_MAX_LOCATIONS];
  struct problems repairs;      /* what was repaired, per chunk */
  struct problems cut;          /* EC: chunks cut short, left */
  struct problems problems;     /* not repaired */
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
  char what[600];
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
  if (r[good] == 1) {
    atomic_fetch_add (&c->removed, 1);
    atomic_fetch_add (&c->loc_removed[i], 1);
  }
  else if (r[i] == 1) {
    atomic_fetch_add (&c->restored, 1);
    atomic_fetch_add (&c->loc_restored[i], 1);
  }
  else {
    atomic_fetch_add (&c->rewritten, 1);
    atomic_fetch_add (&c->loc_rewritten[i], 1);
  }
  snprintf (what, sizeof what, "location %u (%s): %s", i, c->where[i],
            r[good] == 1 ? "a stray copy: removed" :
            r[i] == 1 ? "copy missing: restored" :
            r[i] == -1 ? "copy unreadable: rewritten" :
            "copy differed: rewritten");
  problems_add (&c->repairs, n, what);
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

/* The locations in MASK, as "0 (/a), 2 (/c)". */
static const char *
name_locations (const struct scrub *c, uint32_t mask, char *buf, size_t len)
{
  size_t used = 0;
  unsigned i;

  buf[0] = '\0';
  for (i = 0; i < c->nloc && used < len; ++i)
    if (mask & BIT (i))
      used += (size_t) snprintf (buf + used, len - used, "%s%u (%s)",
                                 used ? ", " : "", i, c->where[i]);
  return buf;
}

/* Erasure coding: the EC store checks chunk n's fragments and rebuilds
 * what is wrong; here what it did is counted and told.
 */
static void
scrub_ec (struct scrub *c, uint64_t n)
{
  struct ec_scrub_result r;
  char what[1200], locs[900];
  const char *err;
  unsigned i;
  int ret;

  error_capture_begin ();
  ret = ec_store_scrub_chunk (c->ec, n, &r);
  err = error_capture_end ();
  switch (r.state) {
  case EC_SCRUB_ABSENT:
  case EC_SCRUB_SOUND:
    break;
  case EC_SCRUB_CUT_SHORT:
    atomic_fetch_add (&c->cut_short, 1);
    snprintf (what, sizeof what, "fragments on %u location(s) only, %s, "
              "fewer than the %u a chunk needs: a write or removal cut "
              "short by a crash (the volume reads the chunk as absent): "
              "left as they are", COUNT (r.read & ~r.absent),
              name_locations (c, r.read & ~r.absent, locs, sizeof locs),
              c->k);
    problems_add (&c->cut, n, what);
    break;
  case EC_SCRUB_UNRECOVERABLE:
    snprintf (what, sizeof what, "only %u good fragment(s) of one write, "
              "%u needed (%u missing, %u unreadable, %u failing their "
              "digest, %u of another write): cannot be rebuilt, nothing "
              "changed", COUNT (r.good), c->k,
              COUNT (r.absent), COUNT (r.unreadable),
              COUNT (r.bad), COUNT (r.other_write));
    problems_add (&c->problems, n, what);
    break;
  case EC_SCRUB_REPAIRED:
    for (i = 0; i < c->nloc; ++i) {
      const uint32_t b = BIT (i);
      if (!((r.rewritten | r.restored) & b))
        continue;
      if (r.restored & b) {
        atomic_fetch_add (&c->restored, 1);
        atomic_fetch_add (&c->loc_restored[i], 1);
      }
      else {
        atomic_fetch_add (&c->rewritten, 1);
        atomic_fetch_add (&c->loc_rewritten[i], 1);
      }
      snprintf (what, sizeof what, "location %u (%s): fragment %s: rebuilt "
                "from %u good ones and %s", i, c->where[i],
                r.absent & b ? "missing" :
                r.unreadable & b ? "unreadable" :
                r.bad & b ? "fails its digest" : "of another write",
                COUNT (r.good),
                r.restored & b ? "restored" : "rewritten");
      problems_add (&c->repairs, n, what);
    }
    if (r.write_failed) {
      snprintf (what, sizeof what, "location(s) %s: the rebuilt fragment "
                "could not be written: %s",
                name_locations (c, r.write_failed, locs, sizeof locs), err);
      problems_add (&c->problems, n, what);
    }
    return;
  }
  if (ret == -1) {
    snprintf (what, sizeof what, "scrub failed: %s", err);
    problems_add (&c->problems, n, what);
  }
}

static void *
worker (void *arg)
{
  struct scrub *c = arg;
  void *buf[MIRROR_MAX_LOCATIONS] = { NULL };
  unsigned i;
  uint64_t n;

  for (i = 0; i < c->nloc && !c->ec; ++i)
    if ((buf[i] = malloc (c->chunk_size)) == NULL) {
      problems_fail (&c->problems);
      goto out;
    }
  while ((n = atomic_fetch_add (&c->next, 1)) < c->nr_chunks) {
    if (!(c->held[n >> 3] & (1u << (n & 7))))
      continue;
    if (c->ec)
      scrub_ec (c, n);
    else
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
check_not_served (struct set_where *s, const char *name, const int *ok)
{
  unsigned i;

  for (i = 0; i < s->n; ++i) {
    char who[512];
    int r;

    if (ok[i] != 1)
      continue;
    r = set_where_holder (s, i, name, who, sizeof who);
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
json_list (const char *key, const struct problems *p, const char *field)
{
  size_t i;

  printf (",\"%s\":[", key);
  for (i = 0; i < p->len; ++i) {
    printf ("%s{\"chunk\":%" PRIu64 ",\"%s\":", i ? "," : "",
            p->v[i].chunk, field);
    json_string (stdout, p->v[i].what);
    printf ("}");
  }
  printf ("]");
}

static void
report_json (const struct scrub *c, const char *name, uint64_t caught_up)
{
  char red[32];
  unsigned i;

  if (c->ec)
    snprintf (red, sizeof red, "ec:%u+%u", c->k, c->m);
  else
    snprintf (red, sizeof red, "mirror");
  printf ("{\"name\":");
  json_string (stdout, name);
  printf (",\"redundancy\":\"%s\",\"ok\":%s,\"chunks\":%" PRIu64
          ",\"caught_up\":%" PRIu64 ",\"rewritten\":%" PRIu64
          ",\"restored\":%" PRIu64 ",\"removed\":%" PRIu64
          ",\"cut_short\":%" PRIu64 ",\"not_repaired\":%zu",
          red, c->problems.len ? "false" : "true", (uint64_t) c->compared,
          caught_up, (uint64_t) c->rewritten, (uint64_t) c->restored,
          (uint64_t) c->removed, (uint64_t) c->cut_short, c->problems.len);
  printf (",\"locations\":[");
  for (i = 0; i < c->nloc; ++i) {
    printf ("%s{\"index\":%u,\"path\":", i ? "," : "", i);
    json_string (stdout, c->where[i]);
    printf (",\"caught_up\":%" PRIu64 ",\"rewritten\":%" PRIu64
            ",\"restored\":%" PRIu64 ",\"removed\":%" PRIu64 "}",
            c->loc_caught_up[i], (uint64_t) c->loc_rewritten[i],
            (uint64_t) c->loc_restored[i], (uint64_t) c->loc_removed[i]);
  }
  printf ("]");
  json_list ("repairs", &c->repairs, "what");
  json_list ("cut_short_chunks", &c->cut, "what");
  json_list ("problems", &c->problems, "error");
  printf ("}\n");
}

static void
report (const struct scrub *c, const char *name, uint64_t caught_up)
{
  size_t i;
  unsigned l;

  if (opts.json) {
    report_json (c, name, caught_up);
    return;
  }
  for (i = 0; i < c->repairs.len; ++i)
    printf ("%s: chunk %" PRIu64 ": %s\n", name, c->repairs.v[i].chunk,
            c->repairs.v[i].what);
  for (i = 0; i < c->cut.len; ++i)
    printf ("%s: chunk %" PRIu64 ": %s\n", name, c->cut.v[i].chunk,
            c->cut.v[i].what);
  for (i = 0; i < c->problems.len; ++i)
    printf ("%s: chunk %" PRIu64 ": %s\n", name, c->problems.v[i].chunk,
            c->problems.v[i].what);
  /* Per location, those that got anything. */
  for (l = 0; l < c->nloc; ++l)
    if (c->loc_caught_up[l] || c->loc_rewritten[l] || c->loc_restored[l] ||
        c->loc_removed[l])
      printf ("%s: location %u (%s): %" PRIu64 " %s from the records, %"
              PRIu64 " rewritten, %" PRIu64 " restored, %" PRIu64
              " removed\n", name, l, c->where[l], c->loc_caught_up[l],
              c->ec ? "rebuilt" : "copied", (uint64_t) c->loc_rewritten[l],
              (uint64_t) c->loc_restored[l], (uint64_t) c->loc_removed[l]);
  if (c->ec)
    printf ("scrub %s: %u locations (ec:%u+%u), %" PRIu64 " chunks checked; "
            "repaired: %" PRIu64 " rebuilt from the records, %" PRIu64
            " rewritten (bad fragment), %" PRIu64 " restored (missing "
            "fragment); %" PRIu64 " cut short (left as they are); %zu not "
            "repaired: %s\n", name, c->nloc, c->k, c->m,
            (uint64_t) c->compared, caught_up, (uint64_t) c->rewritten,
            (uint64_t) c->restored, (uint64_t) c->cut_short, c->problems.len,
            c->problems.len ? "BAD" : "ok");
  else
    printf ("scrub %s: %u locations, %" PRIu64 " chunks compared; repaired: %"
            PRIu64 " copied from the records, %" PRIu64 " rewritten "
            "(differed), %" PRIu64 " restored (missing), %" PRIu64 " removed "
            "(stray); %zu not repaired: %s\n", name, c->nloc,
            (uint64_t) c->compared, caught_up, (uint64_t) c->rewritten,
            (uint64_t) c->restored, (uint64_t) c->removed, c->problems.len,
            c->problems.len ? "BAD" : "ok");
}

/* Scrub the set C was opened over (C->vs, C->loc, C->where, the
 * shape and size filled in): refuse unless every location is up, then
 * the catch-up (1), every chunk (2), the syncs (3) and the report.
 * Returns the exit status.
 */
static int
scrub_set (struct scrub *c, const char *name)
{
  struct mirror_store *mirror = c->vs->mirror;
  uint64_t caught_up = 0;
  char label[300];
  unsigned i;

  c->ec = c->vs->ec;
  c->nr_chunks = (c->size + c->chunk_size - 1) / c->chunk_size;
  for (i = 0; i < c->nloc; ++i)
    if (!volume_set_store_is_up (c->vs, i)) {
      tool_error ("volume '%s': location %u (%s) does not answer: scrub "
                  "needs every location", name, i, c->where[i]);
      return EXIT_ERROR;
    }

  /* 1. What the records say each location lacks: copied (a mirror) or
   * rebuilt from K others (erasure coding).
   */
  for (i = 0; i < c->nloc; ++i) {
    c->loc_caught_up[i] = volume_set_store_lacking (c->vs, i);
    caught_up += c->loc_caught_up[i];
  }
  if (caught_up &&
      (c->ec ? ec_store_catch_up (c->ec) : mirror_store_catch_up (mirror))
      != 0) {
    tool_error ("volume '%s': the %s the records ask for could not all "
                "be made", name, c->ec ? "fragments" : "copies");
    return EXIT_ERROR;
  }

  /* 2. Every chunk some location holds: copy against copy, or each
   * fragment against its digest.
   */
  c->held = calloc ((size_t) ((c->nr_chunks + 7) / 8) + 1, 1);
  if (c->held == NULL) {
    tool_error ("calloc: %m");
    return EXIT_ERROR;
  }
  for (i = 0; i < c->nloc; ++i)
    if (c->loc[i].ops->list (c->loc[i].opaque, found, c) == -1)
      return EXIT_ERROR;
  snprintf (label, sizeof label, "scrub %s", name);
  progress_start (label, count_held (c));
  run_workers (opts.jobs ? opts.jobs : 1, worker, c);
  progress_end ();
  if (c->problems.failed || c->repairs.failed || c->cut.failed) {
    tool_error ("out of memory");
    return EXIT_ERROR;
  }

  /* 3. Durable. */
  for (i = 0; i < c->nloc; ++i)
    if (c->loc[i].ops->sync (c->loc[i].opaque) == -1)
      return EXIT_ERROR;
  problems_sort (&c->problems);
  problems_sort (&c->repairs);
  problems_sort (&c->cut);
  report (c, name, caught_up);
  return c->problems.len ? EXIT_PROBLEMS : EXIT_OK;
}

/* A set of directories, opened as sharded-file opens it.  Every
 * location must answer.  A mirror: write quorum 1 (mirror_store_min_up),
 * and writes go to all of them.  Erasure coding: as the metadata says
 * (file_set_open checks every location against it).
 */
static struct file_set *
open_dirs (const struct set_where *s, const char *name,
           const struct volume_meta *m, struct scrub *c)
{
  struct file_set_config fc = { 0 };
  struct file_set *set;
  unsigned i;

  fc.nloc = s->n;
  for (i = 0; i < s->n; ++i) {
    fc.dirnames[i] = s->path[i];
    fc.dirfds[i] = -1;
  }
  fc.ec_k = m->ec_k;
  fc.ec_m = m->ec_m;
  fc.mode = MIRROR_SYNC;
  fc.write_quorum = 1;
  fc.max_open_files = TOOL_MAX_OPEN_FILES;
  fc.no_catch_up_thread = true;
  set = file_set_open (&fc, name, false, NULL);
  if (set == NULL)
    return NULL;
  c->vs = file_set_store (set);
  c->size = file_set_meta (set)->size;
  c->chunk_size = file_set_meta (set)->chunk_size;
  for (i = 0; i < s->n; ++i)
    c->loc[i] = file_set_location_store (set, i);
  return set;
}

/* A set with buckets, opened as s3-object opens it: each bucket's
 * lease taken (lease-wait=0: refused, naming the holder, while a
 * server holds it), each directory's lock.  The same shape as above.
 */
static struct s3_set *
open_buckets (struct set_where *s, const char *name,
              const struct volume_meta *m, struct scrub *c)
{
  static const struct s3_lease_config lease = { S3_LEASE_TIME_DEFAULT, 0 };
  struct s3_set_config sc;
  struct s3_set *set;
  unsigned i;

  memset (&sc, 0, sizeof sc);
  volume_set_params_init (&sc.p);
  sc.p.nloc = s->n;
  sc.p.ec_k = m->ec_k;
  sc.p.ec_m = m->ec_m;
  sc.p.mode = MIRROR_SYNC;
  sc.p.write_quorum = 1;
  for (i = 0; i < s->n; ++i) {
    sc.p.loc_name[i] = s->path[i];
    if (s->is_bucket[i]) {
      sc.loc[i].kind = S3_LOCATION_BUCKET;
      sc.loc[i].client = where_s3_client (&s->bucket[i], &sc.loc[i].prefix);
    }
    else {
      sc.loc[i].kind = S3_LOCATION_DIR;
      sc.loc[i].path = s->path[i];
    }
  }
  sc.parallel = opts.jobs ? opts.jobs : 4;
  sc.lease = &lease;
  sc.max_open_files = TOOL_MAX_OPEN_FILES;
  sc.no_catch_up_thread = true;
  set = s3_set_open (&sc, name, false, NULL);
  if (set == NULL)
    return NULL;
  c->vs = s3_set_store (set);
  c->size = s3_set_meta (set)->size;
  c->chunk_size = s3_set_meta (set)->chunk_size;
  for (i = 0; i < s->n; ++i)
    c->loc[i] = s3_set_location_store (set, i);
  return set;
}

int
cmd_scrub (struct where *w, char **args)
{
  const char *name = args[0];
  struct set_where s;
  struct volume_meta m[MIRROR_MAX_LOCATIONS];
  char why[MIRROR_MAX_LOCATIONS][256];
  int ok[MIRROR_MAX_LOCATIONS];
  struct scrub c = { 0 };
  struct file_set *dirs = NULL;
  struct s3_set *buckets = NULL;
  const char *err;
  int r = EXIT_ERROR, first;
  unsigned i;

  problems_init (&c.problems);
  problems_init (&c.repairs);
  problems_init (&c.cut);
  if (set_where_parse (w->display, &s) == -1)
    goto out;
  c.where = (const char *const *) s.path;
  if ((first = set_where_read_meta (&s, name, m, ok, why)) == -1 ||
      check_not_served (&s, name, ok) == -1)
    goto out;
  if (s.n == 1) {
    tool_error ("volume '%s' in %s has one location: nothing to compare "
                "(shardkit check reads it)", name, s.path[0]);
    goto out;
  }
  c.k = m[first].ec_k;
  c.m = m[first].ec_m;
  c.nloc = s.n;
  if (s.buckets == 0)
    dirs = open_dirs (&s, name, &m[first], &c);
  else {
    /* Every location must answer: said here in one line, rather than
     * by each request the open of a set makes to one that does not.
     */
    for (i = 0; i < s.n; ++i)
      if (ok[i] != 1) {
        tool_error ("volume '%s': location %u (%s) does not answer: scrub "
                    "needs every location (%s)", name, i, s.path[i],
                    why[i]);
        goto out;
      }
    /* The open's last error is the one that says why it failed. */
    error_capture_begin ();
    buckets = open_buckets (&s, name, &m[first], &c);
    err = error_capture_end ();
    if (buckets == NULL && err[0])
      tool_error ("%s", err);
  }
  if (dirs == NULL && buckets == NULL)
    goto out;
  r = scrub_set (&c, name);
 out:
  file_set_close (dirs);
  s3_set_close (buckets);
  free (c.held);
  problems_free (&c.problems);
  problems_free (&c.repairs);
  problems_free (&c.cut);
  set_where_free (&s);
  return r;
}
