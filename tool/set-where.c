/* shardkit volume tool: WHERE as the locations of a set.
 * GPL-3.0-or-later.  See set-where.h.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "file-volume.h"
#include "set-location.h"
#include "set-where.h"
#include "tool.h"

#define S3_SCHEME "s3://"

int
set_where_parse (const char *spec, struct set_where *s)
{
  CLEANUP_FREE char *copy = strdup (spec);
  char *p, *save = NULL;

  memset (s, 0, sizeof *s);
  if (copy == NULL) {
    tool_error ("strdup: %m");
    return -1;
  }
  for (p = strtok_r (copy, ",", &save); p; p = strtok_r (NULL, ",", &save)) {
    char *path;

    if (s->n == MIRROR_MAX_LOCATIONS) {
      tool_error ("%s: at most %d %s in a set", spec, MIRROR_MAX_LOCATIONS,
                  s->buckets || strstr (spec, S3_SCHEME) ?
                  "locations" : "directories");
      return -1;
    }
    if (strncmp (p, S3_SCHEME, strlen (S3_SCHEME)) == 0) {
      /* A bucket: its client, with the tool's S3 options. */
      if ((s->path[s->n] = strdup (p)) == NULL) {
        tool_error ("strdup: %m");
        return -1;
      }
      s->is_bucket[s->n] = true;
      s->buckets++;
      if (where_s3_open (p, &s->bucket[s->n++]) == -1)
        return -1;
      continue;
    }
    /* A directory that is gone is still a location: reported, not an
     * error of usage.
     */
    path = set_location_path (p);
    if (path == NULL) {
      tool_error ("%s: %m", p);
      return -1;
    }
    s->path[s->n++] = path;
  }
  if (s->n == 0) {
    tool_error ("'%s': no location given", spec);
    return -1;
  }
  return 0;
}

void
set_where_free (struct set_where *s)
{
  unsigned i;

  for (i = 0; i < s->n; ++i) {
    if (s->is_bucket[i])
      where_close (&s->bucket[i]);
    free (s->path[i]);
  }
  s->n = 0;
}

/* Location I's metadata: 1, 0 none, -1 (WHY). */
static int
read_one (const struct set_where *s, unsigned i, const char *name,
          struct volume_meta *m, char why[256])
{
  struct where *w = (struct where *) &s->bucket[i];
  int r;

  error_capture_begin ();
  if (s->is_bucket[i])
    r = w->ops->read_meta (w, name, m);
  else {
    CLEANUP_CLOSE int fd = open (s->path[i], O_RDONLY | O_DIRECTORY |
                                 O_CLOEXEC);
    if (fd == -1) {
      error_capture_end ();
      snprintf (why, 256, "%s: %s", s->path[i], strerror (errno));
      return -1;
    }
    r = file_volume_read_meta (fd, s->path[i], name, m);
  }
  snprintf (why, 256, "%s", error_capture_end ());
  if (r == 0)
    snprintf (why, 256, "no volume '%s' in %s", name, s->path[i]);
  return r;
}

int
set_where_read_meta (const struct set_where *s, const char *name,
                     struct volume_meta *m, int *ok, char why[][256])
{
  int first = -1;
  unsigned i;

  for (i = 0; i < s->n; ++i) {
    ok[i] = read_one (s, i, name, &m[i], why[i]);
    if (ok[i] == 1 && first == -1)
      first = (int) i;
  }
  if (first == -1) {
    tool_error ("volume '%s' cannot be read in any of the %u location%s "
                "given (%s)", name, s->n, s->n == 1 ? "" : "s", why[0]);
    return -1;
  }
  if (m[first].set_size == 0 && s->n != 1) {
    tool_error ("volume '%s' in %s is a single-location volume, not a set "
                "of %u", name, s->path[first], s->n);
    errno = EINVAL;
    return -1;
  }
  if (m[first].set_size && m[first].set_size != s->n) {
    if (s->buckets)
      tool_error ("volume '%s' in %s is location %" PRIu32 " of a set of %"
                  PRIu32 ": give all %" PRIu32 " locations in its order, "
                  "as LOC1,LOC2,... (directories or s3://BUCKET/PREFIX)",
                  name, s->path[first], m[first].set_index,
                  m[first].set_size, m[first].set_size);
    else
      tool_error ("volume '%s' in %s is location %" PRIu32 " of a set of %"
                  PRIu32 ": give all %" PRIu32 " directories in its order, "
                  "as DIR1,DIR2,...", name, s->path[first],
                  m[first].set_index, m[first].set_size, m[first].set_size);
    errno = EINVAL;
    return -1;
  }
  return first;
}

int
set_where_holder (struct set_where *s, unsigned i, const char *name,
                  char *buf, size_t len)
{
  struct where w;
  int r;

  buf[0] = '\0';
  if (s->is_bucket[i])
    return s->bucket[i].ops->holder (&s->bucket[i], name, buf, len);
  memset (&w, 0, sizeof w);
  r = where_dir_open (s->path[i], &w);
  if (r == 0)
    r = w.ops->holder (&w, name, buf, len);
  where_close (&w);
  return r;
}
