/* shardkit s3-object: a volume over several locations, buckets and
 * local directories (redundancy=mirror or ec:K+M, common/volume-set.h).
 * GPL-3.0-or-later.
 *
 * Each location holds the volume in its own right: a bucket location
 * is an s3-object volume there (NAME.meta with the set's keys, its
 * chunks or fragments, and its own lease while served read-write), a
 * directory location is a sharded-file volume (its flock).  What a
 * location lacks is recorded on the others: as NAME.missing.L objects
 * in a bucket (s3-missing.h), as NAME.missing.L files in a directory
 * (sharded-file's missing-file.h).
 *
 * A set opens degraded while enough locations answer
 * (volume_set_min_up); one that does not (a bucket unreachable or
 * refusing, a directory gone) starts down, is probed in the background,
 * and is caught up when it answers.  A bucket held by another server's
 * lease, or a location of another set, is refused at open.
 */
#ifndef SHARDKIT_S3_SET_H
#define SHARDKIT_S3_SET_H

#include <stdbool.h>
#include <stddef.h>

#include "chunk-engine.h"
#include "s3-http.h"
#include "s3-lease.h"
#include "volume-layer.h"
#include "volume-set.h"

enum s3_location_kind { S3_LOCATION_BUCKET, S3_LOCATION_DIR };

struct s3_set_location {
  enum s3_location_kind kind;
  struct s3_client *client;     /* bucket: the serving client */
  const char *prefix;           /* bucket: "" or ending in '/' */
  const char *path;             /* directory: absolute */
};

struct s3_set_config {
  /* The set's parameters; p.loc_name[i] names location i. */
  struct volume_set_params p;
  struct s3_set_location loc[VOLUME_SET_MAX_LOCATIONS];
  unsigned parallel;            /* chunk requests in flight per request */
  const struct s3_lease_config *lease;
  size_t max_open_files;        /* per directory location */
  /* The volume tool runs the catch-up itself (scrub). */
  bool no_catch_up_thread;
};

struct s3_set;

/* Create volume NAME in every location if CREATE says so and it exists
 * in none; check an existing one (each location the one its metadata
 * says; enough of them answer).  CLIENTS[i] replaces loc[i].client
 * (the plugin's throw-away clients before nbdkit forks).  Returns 0,
 * or -1 after one nbdkit_error.
 */
extern int s3_set_prepare (const struct s3_set_config *c,
                           struct s3_client *const *clients,
                           const char *name,
                           const struct volume_create *create);

/* Open volume NAME for serving, and (unless READONLY) start the
 * catch-up thread.  NULL after nbdkit_error.
 */
extern struct s3_set *s3_set_open (const struct s3_set_config *c,
                                   const char *name, bool readonly,
                                   const struct volume_create *create);
extern void s3_set_close (struct s3_set *s);
extern struct chunk_engine *s3_set_engine (struct s3_set *s);

/* For the volume tool: the volume's metadata (the first location's that
 * answered), the redundant store (mirror or EC, volume-set.h), and
 * location I's own store (EIO while it is down).
 */
extern const struct volume_meta *s3_set_meta (struct s3_set *s);
extern struct volume_set_store *s3_set_store (struct s3_set *s);
extern struct chunk_store s3_set_location_store (struct s3_set *s,
                                                 unsigned i);

#endif /* SHARDKIT_S3_SET_H */
