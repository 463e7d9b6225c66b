/* shardkit volume tool: create, delete, resize.
 * GPL-3.0-or-later.
 *
 * Delete and resize open the volume read-write through its store, as
 * a plugin serving it would: that takes the volume's flock exclusively
 * (directories) or its lease (buckets), so they refuse, with the
 * store's one line naming the holder, a volume that a server has open,
 * and no server can open it while they work.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "chunk-list.h"
#include "commands.h"
#include "tool.h"
#include "volume-meta.h"
#include "where.h"

/* Chunks removed per store request (S3 DeleteObjects takes 1000). */

int
volume_size_arg (const char *s, uint64_t *size)
{
  const char *why;

  if (parse_size (s, size, &why) == -1) {
    tool_error ("size '%s': %s", s, why);
    return -1;
  }
  if (*size == 0) {
    tool_error ("size '%s': a volume cannot be empty", s);
    return -1;
  }
  if (*size > VOLUME_SIZE_MAX) {
    tool_error ("size '%s': larger than the largest volume (%" PRIu64
                " bytes)", s, VOLUME_SIZE_MAX);
    return -1;
  }
  return 0;
}

/* Refuse a size that needs more chunks than the engine takes. */
static int
check_chunk_count (uint64_t size, uint32_t chunk_size, const char *arg)
{
  uint64_t n = (size + chunk_size - 1) / chunk_size;

  if (n > CHUNK_ENGINE_MAX_CHUNKS) {
    tool_error ("size '%s' needs %" PRIu64 " chunks of %" PRIu32 " bytes, "
                "more than %" PRIu64 ": use a larger --chunk-size", arg, n,
                chunk_size, (uint64_t) CHUNK_ENGINE_MAX_CHUNKS);
    return -1;
  }
  return 0;
}

int
cmd_create (struct where *w, char **args)
{
  const char *name = args[0];
  uint32_t cs = opts.chunk_size ? opts.chunk_size : CHUNK_SIZE_DEFAULT;
  uint64_t size;
  char h[32];

  if (volume_size_arg (args[1], &size) == -1 ||
      check_chunk_count (size, cs, args[1]) == -1)
    return EXIT_ERROR;
  if (w->ops->create (w, name, size, cs) == -1)
    return EXIT_ERROR;
  printf ("created volume %s in %s: %" PRIu64 " bytes (%s), chunk size %"
          PRIu32 "\n", name, w->display, size, human_size (size, h, sizeof h),
          cs);
  return EXIT_OK;
}

/* Collect the chunks of TV from chunk FROM on, for delete and resize:
 * the present ones (the engine's map) and, from the store's own
 * listing, any past the end of the volume, which the engine ignores
 * (left by an interrupted shrink, or strays): removing a volume removes
 * them too, and growing one must not bring them back into view.
 * Returns 0 or -1 after an error.
 */
static int
collect_chunks (struct tool_volume *tv, uint64_t from, struct chunk_list *l)
{
  uint64_t nr = (tv->meta.size + tv->meta.chunk_size - 1) /
    tv->meta.chunk_size, n;

  l->from = from;
  /* The engine's map of a volume with a base holds the base's chunks
   * too: only the store's own listing says which are this volume's.
   */
  const bool layered = tv->meta.base[0] != '\0';

  if (!layered)
    for (n = from; n < nr; ++n)
      if (chunk_engine_is_present (tv->engine, n))
        chunk_list_add (l, n);
  if (!layered)
    l->from = from > nr ? from : nr;
  if (tv->ops->list (tv->store, chunk_list_found, l) == -1)
    return -1;
  if (l->failed) {
    tool_error ("realloc: %m");
    return -1;
  }
  return 0;
}

static int
remove_chunks (struct tool_volume *tv, const struct chunk_list *l,
               const char *what)
{
  if (l->len == 0)
    return 0;
  if (chunk_list_remove (tv, l, what, NULL) == -1)
    return -1;
  return tv->ops->sync (tv->store);
}

/* A volume that others name as base= or data= (its snapshots, the
 * clones of a snapshot) stays: they would lose their data.  Asked with
 * the volume locked, so no snapshot of it can be taken meanwhile.
 */
static int
check_no_dependents (struct tool_volume *tv)
{
  char who[1024];
  int r = volume_dependents (tv->w, tv->name, who, sizeof who);

  if (r > 0)
    tool_error ("volume '%s' is needed by %s: delete %s first",
                tv->name, who, r == 1 ? "it" : "them");
  return r == 0 ? 0 : -1;
}

int
cmd_delete (struct where *w, char **args)
{
  struct tool_volume tv = { 0 };
  struct chunk_list l = { 0 };
  char what[300];
  bool keep_chunks = false;
  int r = EXIT_ERROR;

  /* Its own chunks only: a volume whose chain is broken (a base
   * deleted by hand) can no longer be served, but it can be deleted.
   */
  if (w->ops->open (w, args[0], TOOL_OPEN_WRITE | TOOL_OPEN_OWN_CHUNKS,
                    opts.jobs, &tv) == -1)
    return EXIT_ERROR;
  if (check_no_dependents (&tv) == -1)
    goto out;
  /* A snapshot's chunks (data=) are a frozen generation of its volume,
   * which only the snapshot reads once the volume has moved on: they
   * go with it.  A snapshot left by a crash during snapshot names the
   * generation its volume still writes: it goes with its metadata alone.
   */
  if (tv.meta.data[0]) {
    struct volume_meta dm;
    int got = w->ops->read_meta (w, tv.meta.data, &dm);
    if (got == -1)
      goto out;
    if (got == 1 && dm.generation == tv.meta.data_generation)
      keep_chunks = true;
  }
  if (!keep_chunks && collect_chunks (&tv, 0, &l) == -1)
    goto out;
  /* Chunks first, the metadata last: an interrupted delete leaves a
   * volume (with holes) that a second delete finishes, never chunks
   * without a volume.
   */
  snprintf (what, sizeof what, "delete %s", tv.name);
  if (remove_chunks (&tv, &l, what) == -1 || w->ops->remove_meta (&tv) == -1)
    goto out;
  printf ("deleted volume %s from %s: %zu chunk%s removed\n", tv.name,
          w->display, l.len, l.len == 1 ? "" : "s");
  r = EXIT_OK;
 out:
  free (l.ns);
  w->ops->close (&tv);
  return r;
}

/* Make [FROM, TO) of the open volume read as zeros and hold nothing,
 * through the engine (whole chunks removed, the partial one punched or
 * rewritten, as a trim from a client).
 */
static int
trim_range (struct tool_volume *tv, uint64_t from, uint64_t to)
{
  /* 1 GiB: a multiple of every chunk size, within the engine's
   * 32-bit request length.
   */
  const uint64_t piece = UINT64_C (1) << 30;
  uint64_t off = from;

  progress_start ("shrink", to - from);
  while (off < to) {
    uint64_t end = (off / piece + 1) * piece;
    if (end > to)
      end = to;
    if (chunk_engine_trim (tv->engine, (uint32_t) (end - off), off,
                           false) == -1) {
      progress_end ();
      return -1;
    }
    progress_add (end - off);
    off = end;
  }
  progress_end ();
  return chunk_engine_flush (tv->engine);
}

/* A store that writes whole chunks only (S3) keeps each chunk object
 * exactly as long as the chunk's span at most, and refuses a longer one
 * as corrupt.  After a shrink the last chunk's span is shorter: rewrite
 * its object at the new length (the trim has zeroed its tail already).
 * A store that writes in place has cut its file short in the trim.
 */
static int
recut_last_chunk (struct tool_volume *tv, uint64_t size)
{
  const uint32_t cs = tv->meta.chunk_size;
  const uint64_t n = (size - 1) / cs;
  const uint32_t span = chunk_span_of (size, cs, n);
  CLEANUP_FREE void *buf = NULL;
  int r;

  if (tv->ops->partial_write || span == cs ||
      !chunk_engine_is_present (tv->engine, n))
    return 0;
  buf = malloc (span);
  if (buf == NULL) {
    tool_error ("malloc: %m");
    return -1;
  }
  r = tv->ops->read (tv->store, n, buf, span, 0);
  if (r == -1)
    return -1;
  /* From here on the store works out chunk spans at the new size. */
  tv->w->ops->store_set_size (tv, size);
  if (r == 1 || buffer_is_zero (buf, span))
    return tv->ops->remove (tv->store, &n, 1, true);
  return tv->ops->write (tv->store, n, buf, span, 0, true);
}

int
cmd_resize (struct where *w, char **args)
{
  struct tool_volume tv = { 0 };
  struct chunk_list l = { 0 };
  struct volume_meta m;
  uint64_t size, old, old_nr;
  char h1[32], h2[32];
  int r = EXIT_ERROR;

  if (volume_size_arg (args[1], &size) == -1)
    return EXIT_ERROR;
  if (w->ops->open (w, args[0], TOOL_OPEN_WRITE, opts.jobs, &tv) == -1)
    return EXIT_ERROR;
  m = tv.meta;
  /* A snapshot is frozen, and a volume reading through to a base has
   * the base's size (the chain is checked for it).  A volume that no
   * longer has a base (flattened) is resized like any other: its own
   * chunks, of whatever generation, are all it has.
   */
  if (m.read_only || m.base[0]) {
    tool_error ("volume '%s' %s: it cannot be resized%s", tv.name,
                m.read_only ? "is a snapshot" : "reads through to a base",
                m.read_only ? "" : " (flatten it first)");
    goto out;
  }
  old = m.size;
  old_nr = (old + m.chunk_size - 1) / m.chunk_size;
  if (check_chunk_count (size, m.chunk_size, args[1]) == -1)
    goto out;
  if (size == old) {
    printf ("volume %s is already %" PRIu64 " bytes: nothing to do\n",
            tv.name, size);
    r = EXIT_OK;
    goto out;
  }
  if (size < old && !opts.force) {
    tool_error ("volume '%s': shrinking it from %" PRIu64 " to %" PRIu64
                " bytes discards the data past the new end: give --force "
                "to do that", tv.name, old, size);
    goto out;
  }
  /* Whatever the store holds past the old end would come into view by
   * growing: remove it first.
   */
  if (collect_chunks (&tv, old_nr, &l) == -1 ||
      remove_chunks (&tv, &l, "remove strays") == -1)
    goto out;
  if (l.len)
    nbdkit_debug ("%s: removed %zu chunk(s) past the end of the volume",
                  tv.name, l.len);
  /* Shrinking: the data goes before the metadata says the volume is
   * smaller, so that an interruption leaves the old size with zeros at
   * its end, never chunks past the end of the new one.
   */
  if (size < old &&
      (trim_range (&tv, size, old) == -1 ||
       recut_last_chunk (&tv, size) == -1))
    goto out;
  m.size = size;
  if (w->ops->rewrite_meta (&tv, &m) == -1)
    goto out;
  printf ("resized volume %s from %" PRIu64 " (%s) to %" PRIu64
          " bytes (%s)\n", tv.name, old, human_size (old, h1, sizeof h1),
          size, human_size (size, h2, sizeof h2));
  r = EXIT_OK;
 out:
  free (l.ns);
  w->ops->close (&tv);
  return r;
}
