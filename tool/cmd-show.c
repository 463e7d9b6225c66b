/* shardkit volume tool: list, info, du.
 * GPL-3.0-or-later.
 *
 * These only look: they read metadata and list the namespace (one
 * directory read or one paginated listing for all volumes), and never
 * take a volume's lock or lease, so they work on volumes in use.
 *
 * Figures: "allocated" is the part of the volume held in chunks (each
 * present chunk counts its whole span, as NBD extents report data),
 * the same for a directory and a bucket; "stored" is what the volume's
 * files or objects take in the store (allocated blocks of files,
 * lengths of objects), metadata included.  A volume's chunks are those
 * of its own generation; a snapshot's are the frozen generation of the
 * volume it was taken of (data=), so each chunk file counts once, for
 * the volume that reads it as its own.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "commands.h"
#include "tool.h"
#include "volume-meta.h"
#include "volume-name.h"
#include "where.h"

struct chunk_seen {
  uint64_t gen, n, stored;
  bool claimed;                 /* counted for a volume that reads it */
};

struct vol_stats {
  char name[VOLUME_NAME_MAX + 1];
  bool has_meta;
  struct chunk_seen *chunks;    /* chunk files found under this name */
  size_t nchunks, cap;
  uint64_t stored;              /* metadata, then the chunks counted */
  /* Filled from the metadata after the scan. */
  int meta_r;                   /* read_meta: 1, 0, -1 */
  char meta_error[512];
  struct volume_meta meta;
  uint64_t present, allocated, past_end;
};

struct stats {
  struct vol_stats *v;
  size_t len, cap;
  size_t last;                  /* index of the last volume hit */
};

/* The volume called NAME among those found, or NULL. */
static struct vol_stats *
lookup (struct stats *s, const char *name)
{
  size_t i;

  for (i = 0; i < s->len; ++i)
    if (strcmp (s->v[i].name, name) == 0)
      return &s->v[i];
  return NULL;
}

/* The volume called NAME, added if new; NULL if out of memory. */
static struct vol_stats *
find_volume (struct stats *s, const char *name)
{
  struct vol_stats *found;

  if (s->last < s->len && strcmp (s->v[s->last].name, name) == 0)
    return &s->v[s->last];
  found = lookup (s, name);
  if (found) {
    s->last = found - s->v;
    return found;
  }
  if (s->len == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    struct vol_stats *v = realloc (s->v, cap * sizeof *v);
    if (v == NULL)
      return NULL;
    s->v = v;
    s->cap = cap;
  }
  memset (&s->v[s->len], 0, sizeof s->v[s->len]);
  strcpy (s->v[s->len].name, name);
  s->last = s->len;
  return &s->v[s->len++];
}

static int
add_entry (void *opaque, const struct where_entry *e)
{
  struct stats *s = opaque;
  struct vol_stats *v = find_volume (s, e->volume);

  if (v == NULL)
    goto oom;
  if (e->kind == ENTRY_META)
    v->has_meta = true;
  if (e->kind != ENTRY_CHUNK)
    v->stored += e->stored;
  else {
    if (v->nchunks == v->cap) {
      size_t cap = v->cap ? v->cap * 2 : 64;
      struct chunk_seen *c = realloc (v->chunks, cap * sizeof *c);
      if (c == NULL)
        goto oom;
      v->chunks = c;
      v->cap = cap;
    }
    v->chunks[v->nchunks++] = (struct chunk_seen) {
      .gen = e->gen, .n = e->n, .stored = e->stored,
    };
  }
  return 0;
 oom:
  tool_error ("realloc: %m");
  return -1;
}

static int
compare_names (const void *a, const void *b)
{
  return strcmp (((const struct vol_stats *) a)->name,
                 ((const struct vol_stats *) b)->name);
}

/* Count for V the chunk files of generation GEN found under SRC's name. */
static void
count_chunks (struct vol_stats *v, struct vol_stats *src, uint64_t gen)
{
  uint64_t nr = (v->meta.size + v->meta.chunk_size - 1) / v->meta.chunk_size;
  size_t j;

  for (j = 0; j < src->nchunks; ++j) {
    struct chunk_seen *c = &src->chunks[j];

    if (c->gen != gen)
      continue;
    c->claimed = true;
    v->stored += c->stored;
    if (c->n < nr) {
      v->present++;
      v->allocated += chunk_span_of (v->meta.size, v->meta.chunk_size, c->n);
    }
    else
      v->past_end++;
  }
}

/* Read each volume's metadata and work out its figures.  WHOLE: every
 * volume of the namespace was scanned (else a snapshot that reads some
 * of these chunk files as its own may not have been).
 */
static void
compute (struct where *w, struct stats *s, bool whole)
{
  size_t i, j;

  qsort (s->v, s->len, sizeof *s->v, compare_names);
  for (i = 0; i < s->len; ++i) {
    struct vol_stats *v = &s->v[i];
    const char *err;

    if (!v->has_meta)
      continue;
    /* A volume whose metadata cannot be read is still listed, with
     * why, rather than ending the listing of the others.
     */
    error_capture_begin ();
    v->meta_r = w->ops->read_meta (w, v->name, &v->meta);
    err = error_capture_end ();
    if (v->meta_r == -1)
      snprintf (v->meta_error, sizeof v->meta_error, "%s", err);
  }
  for (i = 0; i < s->len; ++i) {
    struct vol_stats *v = &s->v[i];
    struct vol_stats *src = v;
    uint64_t gen;

    if (v->meta_r != 1)
      continue;
    gen = v->meta.generation;
    if (v->meta.data[0]) {
      src = lookup (s, v->meta.data);
      gen = v->meta.data_generation;
    }
    if (src)
      count_chunks (v, src, gen);
  }
  /* Files no volume reads as its own (no metadata, or a generation
   * left behind) still take room: under the name they carry.
   */
  for (i = 0; i < s->len; ++i)
    if (whole || s->v[i].meta_r != 1)
      for (j = 0; j < s->v[i].nchunks; ++j)
        if (!s->v[i].chunks[j].claimed)
          s->v[i].stored += s->v[i].chunks[j].stored;
}

static void
free_stats (struct stats *s)
{
  size_t i;

  for (i = 0; i < s->len; ++i)
    free (s->v[i].chunks);
  free (s->v);
}

/* Keep only the volume called NAME (first), if found. */
static void
keep_only (struct stats *s, const char *name)
{
  struct vol_stats *v = lookup (s, name);
  size_t i;

  if (v && v != &s->v[0]) {
    struct vol_stats t = s->v[0];
    s->v[0] = *v;
    *v = t;
  }
  for (i = v ? 1 : 0; i < s->len; ++i)
    free (s->v[i].chunks);
  s->len = v ? 1 : 0;
  s->last = 0;
}

static int
gather (struct where *w, const char *only, struct stats *s)
{
  if (w->ops->scan (w, only, add_entry, s) != 0)
    return -1;
  if (only) {
    /* A snapshot's chunks carry the name of the volume it was taken of:
     * look there too.
     */
    struct volume_meta m;
    int r;

    error_capture_begin ();
    r = w->ops->read_meta (w, only, &m);
    error_capture_end ();
    if (r == 1 && m.data[0] && strcmp (m.data, only) != 0 &&
        w->ops->scan (w, m.data, add_entry, s) != 0)
      return -1;
  }
  compute (w, s, only == NULL);
  if (only)
    keep_only (s, only);
  return 0;
}

/* The figures of one volume as JSON members (no braces). */
static void
json_volume (const struct vol_stats *v)
{
  printf ("\"name\":");
  json_string (stdout, v->name);
  if (v->meta_r == 1) {
    printf (",\"size\":%" PRIu64 ",\"chunk_size\":%" PRIu32
            ",\"chunks\":%" PRIu64 ",\"chunks_total\":%" PRIu64
            ",\"allocated\":%" PRIu64,
            v->meta.size, v->meta.chunk_size, v->present,
            (v->meta.size + v->meta.chunk_size - 1) / v->meta.chunk_size,
            v->allocated);
  }
  else {
    printf (",\"error\":");
    json_string (stdout, v->meta_r == 0 ? "metadata vanished while listing"
                 : v->meta_error);
  }
  printf (",\"stored\":%" PRIu64, v->stored);
}

int
cmd_list (struct where *w, char **args)
{
  struct stats s = { 0 };
  size_t i;
  bool first = true;

  if (gather (w, NULL, &s) == -1) {
    free_stats (&s);
    return EXIT_ERROR;
  }
  if (opts.json)
    printf ("[");
  else
    printf ("%-24s %16s %10s %10s %16s\n", "NAME", "SIZE", "CHUNK-SIZE",
            "CHUNKS", "ALLOCATED");
  for (i = 0; i < s.len; ++i) {
    const struct vol_stats *v = &s.v[i];
    char h1[32], h2[32], h3[32];

    if (!v->has_meta)
      continue;                 /* chunks without a volume: see du */
    if (opts.json) {
      printf ("%s{", first ? "" : ",");
      json_volume (v);
      printf ("}");
    }
    else if (v->meta_r == 1)
      printf ("%-24s %16s %10s %10" PRIu64 " %16s\n", v->name,
              human_size (v->meta.size, h1, sizeof h1),
              human_size (v->meta.chunk_size, h2, sizeof h2), v->present,
              human_size (v->allocated, h3, sizeof h3));
    else
      printf ("%-24s (unreadable metadata: see shardkit info)\n", v->name);
    first = false;
  }
  if (opts.json)
    printf ("]\n");
  free_stats (&s);
  return EXIT_OK;
}

int
cmd_info (struct where *w, char **args)
{
  const char *name = args[0];
  struct stats s = { 0 };
  struct vol_stats *v = NULL;
  struct volume_meta m;
  char holder[512] = "", h[32], deps[1024], data[VOLUME_CHUNK_STEM_MAX];
  int r, held, ndeps;

  r = w->ops->read_meta (w, name, &m);
  if (r == 0)
    tool_error ("volume '%s' does not exist in %s", name, w->display);
  if (r != 1)
    return EXIT_ERROR;
  if (gather (w, name, &s) == -1) {
    free_stats (&s);
    return EXIT_ERROR;
  }
  for (size_t i = 0; i < s.len; ++i)
    if (strcmp (s.v[i].name, name) == 0)
      v = &s.v[i];
  if (v == NULL || v->meta_r != 1) {
    tool_error ("volume '%s' changed while it was being looked at", name);
    free_stats (&s);
    return EXIT_ERROR;
  }
  held = w->ops->holder (w, name, holder, sizeof holder);
  if (held == -1 ||
      (ndeps = volume_dependents (w, name, deps, sizeof deps)) == -1) {
    free_stats (&s);
    return EXIT_ERROR;
  }
  if (m.data[0])
    volume_chunk_stem (m.data, m.data_generation, data, sizeof data);

  if (opts.json) {
    printf ("{");
    json_volume (v);
    printf (",\"uuid\":");
    json_string (stdout, v->meta.uuid);
    printf (",\"created\":");
    json_string (stdout, v->meta.created);
    printf (",\"where\":");
    json_string (stdout, w->display);
    printf (",\"chunks_past_end\":%" PRIu64 ",\"in_use\":%s,\"holder\":",
            v->past_end, held ? "true" : "false");
    if (held)
      json_string (stdout, holder);
    else
      printf ("null");
    printf (",\"snapshot\":%s,\"generation\":%" PRIu64 ",\"base\":",
            m.read_only ? "true" : "false", m.generation);
    if (m.base[0])
      json_string (stdout, m.base);
    else
      printf ("null");
    printf (",\"data\":");
    if (m.data[0])
      json_string (stdout, data);
    else
      printf ("null");
    printf (",\"dependents\":");
    json_string (stdout, deps);
    printf ("}\n");
  }
  else {
    printf ("name:       %s\n", v->name);
    printf ("where:      %s\n", w->display);
    printf ("size:       %" PRIu64 " (%s)\n", v->meta.size,
            human_size (v->meta.size, h, sizeof h));
    printf ("chunk size: %" PRIu32 " (%s)\n", v->meta.chunk_size,
            human_size (v->meta.chunk_size, h, sizeof h));
    printf ("chunks:     %" PRIu64 " of %" PRIu64 "\n", v->present,
            (v->meta.size + v->meta.chunk_size - 1) / v->meta.chunk_size);
    printf ("allocated:  %" PRIu64 " (%s)\n", v->allocated,
            human_size (v->allocated, h, sizeof h));
    printf ("stored:     %" PRIu64 " (%s)\n", v->stored,
            human_size (v->stored, h, sizeof h));
    printf ("uuid:       %s\n", v->meta.uuid);
    printf ("created:    %s\n", v->meta.created);
    printf ("in use:     %s\n", held ? holder : "no");
    if (m.read_only)
      printf ("snapshot:   yes, of %s\n", data);
    if (m.generation)
      printf ("generation: %" PRIu64 "\n", m.generation);
    if (m.base[0])
      printf ("base:       %s (uuid %s)\n", m.base, m.base_uuid);
    if (ndeps > 0)
      printf ("needed by:  %s\n", deps);
    if (v->past_end)
      printf ("warning:    %" PRIu64 " chunk(s) past the end of the volume "
              "(shardkit check)\n", v->past_end);
  }
  free_stats (&s);
  return EXIT_OK;
}

int
cmd_du (struct where *w, char **args)
{
  const char *only = args[0];
  struct stats s = { 0 };
  uint64_t total = 0;
  size_t i;
  char h[32];

  if (only) {
    struct volume_meta m;
    int r = w->ops->read_meta (w, only, &m);
    if (r == 0)
      tool_error ("volume '%s' does not exist in %s", only, w->display);
    if (r != 1)
      return EXIT_ERROR;
  }
  if (gather (w, only, &s) == -1) {
    free_stats (&s);
    return EXIT_ERROR;
  }
  if (opts.json)
    printf ("{\"volumes\":[");
  for (i = 0; i < s.len; ++i) {
    const struct vol_stats *v = &s.v[i];

    total += v->stored;
    if (opts.json) {
      printf ("%s{\"name\":", i ? "," : "");
      json_string (stdout, v->name);
      printf (",\"stored\":%" PRIu64 ",\"has_metadata\":%s}", v->stored,
              v->has_meta ? "true" : "false");
    }
    else
      printf ("%12s  %s%s\n", human_size (v->stored, h, sizeof h), v->name,
              v->has_meta ? "" : " (no metadata: not a volume)");
  }
  if (opts.json)
    printf ("],\"total\":%" PRIu64 "}\n", total);
  else
    printf ("%12s  total\n", human_size (total, h, sizeof h));
  free_stats (&s);
  return EXIT_OK;
}
