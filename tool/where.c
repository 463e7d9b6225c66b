/* shardkit volume tool: open WHERE (see where.h).
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

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
  if (w->ops == NULL)
    return;
  if (strcmp (w->ops->kind, "bucket") == 0)
    where_s3_close (w);
  else
    where_dir_close (w);
  free (w->display);
  w->ops = NULL;
}
