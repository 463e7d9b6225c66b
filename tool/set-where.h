/* shardkit volume tool: WHERE as the locations of a set (status,
 * scrub): "LOC1,LOC2,LOC3", in the set's order, each a directory (as
 * the dir= of sharded-file) or s3://BUCKET[/PREFIX] (as a bucket= and
 * its prefix= of s3-object).  A single location is a set of one.
 * Every bucket is reached with the tool's own S3 options (--endpoint,
 * --region, --profile, --url-style) and credentials: one server for
 * them all.
 * GPL-3.0-or-later.
 *
 * The directories are not opened here: status reports those that are
 * not there, scrub refuses to go on without one.  Each bucket gets its
 * client (where-s3.c), which makes no request until asked.
 */
#ifndef SHARDKIT_TOOL_SET_WHERE_H
#define SHARDKIT_TOOL_SET_WHERE_H

#include <stdbool.h>
#include <stddef.h>

#include "mirror-store.h"
#include "volume-meta.h"
#include "where.h"

struct set_where {
  unsigned n;
  unsigned buckets;                     /* how many are buckets */
  /* A directory: its absolute path; a bucket: s3://... as given. */
  char *path[MIRROR_MAX_LOCATIONS];
  bool is_bucket[MIRROR_MAX_LOCATIONS];
  struct where bucket[MIRROR_MAX_LOCATIONS];    /* a bucket's */
};

/* Parse SPEC.  Returns 0, or -1 after one error line. */
extern int set_where_parse (const char *spec, struct set_where *s);
extern void set_where_free (struct set_where *s);

/* Read NAME's metadata in each location into M[i] and OK[i] (1 read,
 * 0 no volume, -1 unreachable or unreadable, WHY[i] says).  Returns the
 * first location read, or -1 after one error line if none has it, or
 * if it is a set of another number of locations than given.
 */
extern int set_where_read_meta (const struct set_where *s, const char *name,
                                struct volume_meta *m, int *ok,
                                char why[][256]);

/* Who holds NAME in location I: a directory's lock, a bucket's lease
 * (s3_lease_holder).  1 (described in BUF), 0 nobody, -1 after an
 * error.
 */
extern int set_where_holder (struct set_where *s, unsigned i,
                             const char *name, char *buf, size_t len);

#endif
