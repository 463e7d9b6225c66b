/* shardkit volume tool: WHERE as a set of directories.
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
  if (strncmp (spec, "s3://", 5) == 0) {
    tool_error ("%s: status and scrub work on directories (DIR1,DIR2,...) "
                "for now", spec);
    return -1;
  }
  for (p = strtok_r (copy, ",", &save); p; p = strtok_r (NULL, ",", &save)) {
    char *path;

    if (s->n == MIRROR_MAX_LOCATIONS) {
      tool_error ("%s: at most %d directories in a set", spec,
                  MIRROR_MAX_LOCATIONS);
      return -1;
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
    tool_error ("'%s': no directory given", spec);
    return -1;
  }
  return 0;
}

void
set_where_free (struct set_where *s)
{
  unsigned i;

  for (i = 0; i < s->n; ++i)
    free (s->path[i]);
  s->n = 0;
}

int
set_where_read_meta (const struct set_where *s, const char *name,
                     struct volume_meta *m, int *ok, char why[][256])
{
  int first = -1;
  unsigned i;

  for (i = 0; i < s->n; ++i) {
    CLEANUP_CLOSE int fd = open (s->path[i], O_RDONLY | O_DIRECTORY |
                                 O_CLOEXEC);
    if (fd == -1) {
      snprintf (why[i], 256, "%s: %s", s->path[i], strerror (errno));
      ok[i] = -1;
      continue;
    }
    error_capture_begin ();
    ok[i] = file_volume_read_meta (fd, s->path[i], name, &m[i]);
    snprintf (why[i], 256, "%s", error_capture_end ());
    if (ok[i] == 0)
      snprintf (why[i], 256, "no volume '%s' in %s", name, s->path[i]);
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
    tool_error ("volume '%s' in %s is location %" PRIu32 " of a set of %"
                PRIu32 ": give all %" PRIu32 " directories in its order, as "
                "DIR1,DIR2,...", name, s->path[first], m[first].set_index,
                m[first].set_size, m[first].set_size);
    errno = EINVAL;
    return -1;
  }
  return first;
}
