/* shardkit volume tool: open WHERE (see where.h).
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "tool.h"
#include "where.h"

#define S3_SCHEME "s3://"

int
where_open (const char *spec, struct where *w)
{
  memset (w, 0, sizeof *w);
  if (strncmp (spec, S3_SCHEME, strlen (S3_SCHEME)) == 0)
    return where_s3_open (spec, w);
  return where_dir_open (spec, w);
}

void
where_close (struct where *w)
{
  /* Without ops: only a display (a set's WHERE, shardkit.c). */
  if (w->ops && strcmp (w->ops->kind, "bucket") == 0)
    where_s3_close (w);
  else if (w->ops)
    where_dir_close (w);
  free (w->display);
  free (w->place);
  w->display = w->place = NULL;
  w->ops = NULL;
}

struct names {
  char **v;
  size_t len;
};

static int
collect_meta (void *opaque, const struct where_entry *e)
{
  struct names *l = opaque;
  char **v;

  if (e->kind != ENTRY_META)
    return 0;
  v = realloc (l->v, (l->len + 1) * sizeof *v);
  if (v == NULL || (v[l->len] = strdup (e->volume)) == NULL) {
    if (v)
      l->v = v;
    tool_error ("malloc: %m");
    return -1;
  }
  l->v = v;
  l->len++;
  return 0;
}

/* The names are collected first and the metadata read after the scan,
 * so that no request is made from inside a bucket's listing.
 */
int
where_each_volume (struct where *w, where_volume_fn fn, void *opaque)
{
  struct names l = { 0 };
  size_t i;
  int r;

  r = w->ops->scan (w, NULL, collect_meta, &l);
  for (i = 0; r == 0 && i < l.len; ++i) {
    struct volume_meta m;
    const char *why;
    int got;

    error_capture_begin ();
    got = w->ops->read_meta (w, l.v[i], &m);
    why = error_capture_end ();
    if (got != 0)
      r = fn (opaque, l.v[i], got == 1 ? &m : NULL, why);
  }
  for (i = 0; i < l.len; ++i)
    free (l.v[i]);
  free (l.v);
  return r;
}
