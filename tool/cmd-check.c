/* shardkit volume tool: check NAME.
 * GPL-3.0-or-later.
 *
 * Opens the volume read-only through its store, as a read-only server
 * would (a directory's volume under a shared flock, so that no server
 * writes it meanwhile), and reads every chunk with the store's own read,
 * which verifies what it reads exactly as the plugin's reads do: in a
 * directory, that each chunk is a regular file no longer than a chunk;
 * in a bucket, each chunk object against its per-sub-block CRC32Cs in
 * its metadata (or its ETag when it is a plain MD5 and the object has
 * none), its length, and what the listing said.  The metadata was
 * checked (its checksum line) when the volume was opened; chunks the
 * store holds past the end of the volume are problems too.
 *
 * --jobs=N reads N chunks at once.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "commands.h"
#include "parallel.h"
#include "tool.h"
#include "volume-meta.h"
#include "where.h"

struct check {
  struct tool_volume *tv;
  uint64_t nr_chunks;
  _Atomic uint64_t next;        /* the next chunk number to look at */
  _Atomic uint64_t checked;
  struct problems problems;
};

static void *
worker (void *arg)
{
  struct check *c = arg;
  struct tool_volume *tv = c->tv;
  CLEANUP_FREE void *buf = malloc (tv->meta.chunk_size);
  uint64_t n;

  if (buf == NULL) {
    problems_fail (&c->problems);
    return NULL;
  }
  while ((n = atomic_fetch_add (&c->next, 1)) < c->nr_chunks) {
    uint32_t span = chunk_span_of (tv->meta.size, tv->meta.chunk_size, n);
    const char *why;
    int r;

    if (!chunk_engine_is_present (tv->engine, n))
      continue;
    error_capture_begin ();
    r = tv->view.ops->read (tv->view.opaque, n, buf, span, 0);
    why = error_capture_end ();
    if (r == -1)
      problems_add (&c->problems, n, why);
    else if (r == 1)
      problems_add (&c->problems, n, "listed, but missing when read");
    atomic_fetch_add (&c->checked, 1);
    progress_add (1);
  }
  return NULL;
}

static void
found_past_end (void *opaque, uint64_t n)
{
  struct check *c = opaque;
  char what[160];

  if (n < c->nr_chunks)
    return;
  snprintf (what, sizeof what, "chunk %" PRIu64 " lies past the end of the "
            "volume (%" PRIu64 " chunks): left over or misplaced", n,
            c->nr_chunks);
  problems_add (&c->problems, n, what);
}

static void
report (const struct check *c, const char *name, const char *fatal)
{
  size_t i;

  if (opts.json) {
    printf ("{\"name\":");
    json_string (stdout, name);
    printf (",\"ok\":%s", c->problems.len == 0 && fatal == NULL ?
            "true" : "false");
    if (fatal) {
      printf (",\"error\":");
      json_string (stdout, fatal);
    }
    else
      printf (",\"chunks\":%" PRIu64 ",\"checked\":%" PRIu64,
              chunk_engine_count_present (c->tv->engine),
              (uint64_t) c->checked);
    printf (",\"bad\":[");
    for (i = 0; i < c->problems.len; ++i) {
      printf ("%s{\"chunk\":%" PRIu64 ",\"error\":", i ? "," : "",
              c->problems.v[i].chunk);
      json_string (stdout, c->problems.v[i].what);
      printf ("}");
    }
    printf ("]}\n");
    return;
  }
  if (fatal) {
    printf ("%s: %s\n", name, fatal);
    printf ("check %s: the volume cannot be opened: BAD\n", name);
    return;
  }
  for (i = 0; i < c->problems.len; ++i)
    printf ("%s: chunk %" PRIu64 ": %s\n", name, c->problems.v[i].chunk,
            c->problems.v[i].what);
  printf ("check %s: %" PRIu64 " chunk%s read, %zu bad: %s\n", name,
          (uint64_t) c->checked, c->checked == 1 ? "" : "s", c->problems.len,
          c->problems.len ? "BAD" : "ok");
}

int
cmd_check (struct where *w, char **args)
{
  const char *name = args[0];
  struct tool_volume tv = { 0 };
  struct check c = { .tv = &tv };
  unsigned jobs = opts.jobs ? opts.jobs : 1;
  const char *why;
  struct volume_meta m;
  char label[300], fatal[1024];
  int r, saved;

  problems_init (&c.problems);
  /* A volume that does not exist, or that cannot be reached, is an
   * error of usage or access; one whose metadata or listing is corrupt
   * (EIO from the store) is a problem found.
   */
  error_capture_begin ();
  r = w->ops->read_meta (w, name, &m);
  if (r == 0) {
    error_capture_end ();
    tool_error ("volume '%s' does not exist in %s", name, w->display);
    return EXIT_ERROR;
  }
  if (r == 1)
    r = w->ops->open (w, name, TOOL_OPEN_READ, jobs, &tv);
  saved = errno;
  snprintf (fatal, sizeof fatal, "%s", error_capture_end ());
  errno = saved;
  if (r == -1 && errno != EIO) {
    tool_error ("%s", fatal);
    return EXIT_ERROR;
  }
  if (r == -1) {
    report (&c, name, fatal);
    return EXIT_PROBLEMS;
  }

  c.nr_chunks = (tv.meta.size + tv.meta.chunk_size - 1) / tv.meta.chunk_size;
  error_capture_begin ();
  r = tv.ops->list (tv.store, found_past_end, &c);
  why = error_capture_end ();
  if (r == -1) {
    tool_error ("%s", why);
    goto fail;
  }

  snprintf (label, sizeof label, "check %s", name);
  progress_start (label, chunk_engine_count_present (tv.engine));
  run_workers (jobs, worker, &c);
  progress_end ();
  if (c.problems.failed) {
    tool_error ("out of memory");
    goto fail;
  }

  problems_sort (&c.problems);
  report (&c, name, NULL);
  r = c.problems.len ? EXIT_PROBLEMS : EXIT_OK;
  goto out;
 fail:
  r = EXIT_ERROR;
 out:
  problems_free (&c.problems);
  w->ops->close (&tv);
  return r;
}
