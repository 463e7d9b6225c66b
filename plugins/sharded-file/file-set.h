/* shardkit sharded-file: a volume over one directory or several (a
 * mirror: the same chunks in each), with its chunk engine.
 * GPL-3.0-or-later.
 *
 * One location is a plain file volume (file-volume.h).  Several are a
 * set: each directory holds a whole copy of the volume (NAME.meta with
 * the set's keys, volume-meta.h, and every chunk), opened and locked as
 * a file volume of its own; a mirror store (common/mirror-store.h)
 * over their stores, with the record of what each lacks in NAME.missing.L
 * files (missing-file.h), is the engine's store; and a thread catches
 * the locations up in the background.
 *
 * A set opens degraded: a location that does not answer (its directory
 * gone, its metadata unreadable; set-location.h) starts down as long as
 * mirror_store_min_up of them answer, which between them hold every
 * record of what each location lacks.  Fewer: refused with one line
 * naming those that did not answer.  Its directory is found again by
 * its path (dir= is kept as given, and opened by each set itself, so
 * that a directory that comes back is the one opened).
 *
 * With redundancy=ec:K+M the set is K+M locations and the store is an
 * erasure-coded one (common/ec-store.h): location i holds fragment i of
 * every chunk.
 */
#ifndef SHARDKIT_FILE_SET_H
#define SHARDKIT_FILE_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mirror-store.h"
#include "volume-layer.h"

struct file_set_config {
  unsigned nloc;
  int dirfds[MIRROR_MAX_LOCATIONS];
  const char *dirnames[MIRROR_MAX_LOCATIONS];
  /* Erasure coding: K data + M parity fragments (ec_k 0: a mirror). */
  unsigned ec_k, ec_m;
  unsigned ec_min_write;        /* 0: K+1 */
  enum mirror_mode mode;
  unsigned write_quorum;        /* 0: every location */
  bool durable_all;
  unsigned threads;             /* the mirror's writer threads */
  uint64_t probe_interval_ns;
  size_t max_open_files;        /* per location */
  /* The volume tool runs the catch-up itself (scrub). */
  bool no_catch_up_thread;
};

struct file_set;

/* Create volume NAME in every location if CREATE says so and it exists
 * in none; check an existing one (and that each location is the one its
 * metadata says); check that nobody serves it read-write.  Returns 0,
 * or -1 after one nbdkit_error.
 */
extern int file_set_prepare (const struct file_set_config *c, const char *name,
                             const struct volume_create *create);

/* Open volume NAME for serving (see file_volume_open), and with several
 * locations start the catch-up thread (unless READONLY).  NULL after
 * nbdkit_error.
 */
extern struct file_set *file_set_open (const struct file_set_config *c,
                                       const char *name, bool readonly,
                                       const struct volume_create *create);
extern void file_set_close (struct file_set *s);

extern struct chunk_engine *file_set_engine (struct file_set *s);
extern bool file_set_read_only (struct file_set *s);

/* For the volume tool's scrub: the volume's metadata, the mirror (NULL
 * for one location and for erasure coding), the erasure-coded store
 * (NULL unless redundancy=ec:K+M), and location I's own store (which
 * fails with EIO while the location is down: mirror_store_is_up,
 * ec_store_is_up say).
 */
struct ec_store;
extern const struct volume_meta *file_set_meta (struct file_set *s);
extern struct mirror_store *file_set_mirror (struct file_set *s);
extern struct ec_store *file_set_ec (struct file_set *s);
extern struct chunk_store file_set_location_store (struct file_set *s,
                                                  unsigned i);
/* The redundant store of a set of several locations (volume-set.h), as
 * s3_set_store: mirror or ec, what file_set_mirror and file_set_ec say.
 */
struct volume_set_store;
extern struct volume_set_store *file_set_store (struct file_set *s);

#endif /* SHARDKIT_FILE_SET_H */
