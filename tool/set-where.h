/* shardkit volume tool: WHERE as the directories of a set of locations
 * (status, scrub): "DIR1,DIR2,DIR3", in the set's order, as the dir=
 * of sharded-file one after the other.  A single DIR is a set of one.
 * GPL-3.0-or-later.
 *
 * The directories are not opened here: status reports those that are
 * not there, scrub refuses to go on without one.
 */
#ifndef SHARDKIT_TOOL_SET_WHERE_H
#define SHARDKIT_TOOL_SET_WHERE_H

#include "mirror-store.h"
#include "volume-meta.h"

struct set_where {
  unsigned n;
  char *path[MIRROR_MAX_LOCATIONS];     /* absolute */
};

/* Parse SPEC.  Returns 0, or -1 after one error line. */
extern int set_where_parse (const char *spec, struct set_where *s);
extern void set_where_free (struct set_where *s);

/* Read NAME's metadata in each directory into M[i] and OK[i] (1 read,
 * 0 no volume, -1 unreachable or unreadable, WHY[i] says).  Returns the
 * first location read, or -1 after one error line if none has it, or
 * if it is a set of another number of locations than given.
 */
extern int set_where_read_meta (const struct set_where *s, const char *name,
                                struct volume_meta *m, int *ok,
                                char why[][256]);

#endif
