/* shardkit: a volume over a set of locations, what sharded-file's set
 * of directories and s3-object's set of buckets (and directories) share.
 * GPL-3.0-or-later.
 *
 * A set is N locations, each holding the volume's metadata with the
 * set's keys (volume-meta.h: redundancy, set-size, set-index, one uuid)
 * and its copy or fragment of every chunk.  Each plugin opens its own
 * kind of location (a directory, a bucket) and hands this module the
 * store of each, the persistent record of what each lacks
 * (missing-set.h) and how to probe one that is down; this module keeps:
 *
 *  - the set's parameters (redundancy=, mirror-mode=, write-quorum=,
 *    durability=, probe-interval=, mirror-threads=, ec-min-write=), one
 *    parser and one set of messages for both plugins;
 *  - the checks of a location's metadata against the set's (its place,
 *    its uuid, its mode: a location of another set is refused);
 *  - how many locations must answer at open (mirror_store_min_up,
 *    ec_store_min_up), and the one line naming those that did not;
 *  - the redundant store over the locations (mirror-store.h or
 *    ec-store.h), the chunk engine above it, and the catch-up thread.
 */
#ifndef SHARDKIT_VOLUME_SET_H
#define SHARDKIT_VOLUME_SET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "chunk-engine.h"
#include "ec-store.h"
#include "mirror-store.h"
#include "missing-set.h"
#include "volume-layer.h"
#include "volume-meta.h"

#define VOLUME_SET_MAX_LOCATIONS MIRROR_MAX_LOCATIONS
#define VOLUME_SET_DEFAULT_PROBE_INTERVAL (5 * UINT64_C (1000000000))

/* The set's shape and mode, from the plugin's parameters. */
struct volume_set_params {
  unsigned nloc;
  const char *loc_name[VOLUME_SET_MAX_LOCATIONS];  /* for messages */
  unsigned ec_k, ec_m;          /* ec_k 0: a mirror */
  unsigned ec_min_write;        /* 0: K+1 */
  enum mirror_mode mode;
  unsigned write_quorum;        /* 0: every location */
  bool durable_all;
  unsigned threads;             /* side-by-side writer threads */
  uint64_t probe_interval_ns;
  /* What the command line gave (for volume_set_config_complete). */
  bool redundancy_given, threads_given;
};

#define VOLUME_SET_CONFIG_HELP \
  "redundancy=mirror   With several locations (the default).\n" \
  "redundancy=ec:K+M   Erasure coding over K+M locations, fragment i in the i-th.\n" \
  "ec-min-write=<N>    EC: fewest fragments a write must land (K+1).\n" \
  "mirror-mode=sync|async  Acknowledge writes on every location (sync,\n" \
  "                    the default) or on the first (async).\n" \
  "write-quorum=<N>    Sync: fewest locations a write must reach (all).\n" \
  "durability=first|all  Async: a flush waits for the first location or all.\n" \
  "probe-interval=<T>  How often a location that is down is probed (5s).\n" \
  "mirror-threads=<N>  Threads writing to the locations side by side."

extern void volume_set_params_init (struct volume_set_params *p);

/* One of the set's parameters?  1 if KEY is one (and VALUE is good),
 * 0 if KEY is not a set parameter, -1 after nbdkit_error.
 */
extern int volume_set_config (struct volume_set_params *p, const char *key,
                              const char *value);

/* Check the parameters against the number of locations, P->nloc (given
 * as LOC_PARAM, "dir=" or "locations", in messages), and fill in the
 * defaults.  0, or -1 after one nbdkit_error.
 */
extern int volume_set_config_complete (struct volume_set_params *p,
                                       const char *loc_param);

/* Fill the set's keys of metadata *M for location I (creation). */
extern void volume_set_meta_shape (const struct volume_set_params *p,
                                   unsigned i, struct volume_meta *m);

/* Location I's metadata *M against the set's: its place, and the same
 * volume as FIRST (the metadata of the first location that answered).
 * Returns 0, or -1 after one nbdkit_error naming the location.
 */
extern int volume_set_check_location (const struct volume_set_params *p,
                                      const char *name, unsigned i,
                                      const struct volume_meta *m,
                                      const struct volume_meta *first);

/* Location I answered with metadata *M: check it against the set's
 * (the first location's that answered, copied into *FIRST while *UP is
 * still empty) and add it to *UP.  0, or -1 after one nbdkit_error.
 */
extern int volume_set_admit (const struct volume_set_params *p,
                             const char *name, unsigned i,
                             const struct volume_meta *m,
                             struct volume_meta *first, uint32_t *up);

/* What a kind of location (a directory, a bucket) does for
 * volume_set_create.
 */
struct volume_set_io {
  /* Volume NAME's metadata at location I: 1 with *M, 0 if it is not
   * there, -1 if the location does not answer (quietly or not).
   */
  int (*read_meta) (void *opaque, unsigned i, const char *name,
                    struct volume_meta *m);
  /* Create it there with *M: 0, or -1 after nbdkit_error. */
  int (*create_meta) (void *opaque, unsigned i, const char *name,
                      const struct volume_meta *m);
  void *opaque;
};

/* Create volume NAME in every location if CREATE says so and it exists
 * in none: the same metadata (one uuid) everywhere, each location its
 * own set-index.  One that exists in some locations only, or cannot be
 * created while a location does not answer, is refused.  A location
 * that does not answer is otherwise left to the open, which may go on
 * without it.  0, or -1 after one nbdkit_error.
 */
extern int volume_set_create (const struct volume_set_params *p,
                              const char *name,
                              const struct volume_create *create,
                              const struct volume_set_io *io);

/* The fewest locations that must answer at open. */
extern unsigned volume_set_min_up (const struct volume_set_params *p);

/* Do enough locations answer (the bits of UP)?  0, or -1 with errno
 * EIO after one nbdkit_error naming those that did not, with why
 * (WHY[i]).
 */
extern int volume_set_enough_up (const struct volume_set_params *p,
                                 const char *name, uint32_t up,
                                 char why[][256]);

/* The redundant store over the locations, its engine and catch-up. */
struct volume_set_store {
  struct mirror_store *mirror;
  struct ec_store *ec;          /* or this */
  struct chunk_engine *engine;
  uint64_t probe_interval_ns;
  pthread_t catch_up;
  bool catch_up_started;
};

struct volume_set_locations {
  struct chunk_store store[VOLUME_SET_MAX_LOCATIONS];
  uint32_t down;                /* did not answer at open */
  const struct missing_log_ops *log;
  void *log_opaque;
  bool readonly;                /* the records are only read */
  int (*probe) (void *opaque, unsigned loc);    /* as store_set's */
  bool (*moved) (void *opaque, unsigned loc);   /* optional */
  void *probe_opaque;
};

/* Build the mirror or EC store of P over L for volume NAME with
 * metadata *M, and the engine over it.  0, or -1 after nbdkit_error
 * (then volume_set_store_close).
 */
extern int volume_set_store_open (struct volume_set_store *vs,
                                  const struct volume_set_params *p,
                                  const char *name,
                                  const struct volume_meta *m,
                                  const struct volume_set_locations *l);
/* Start the catch-up thread (once).  0, or -1 after nbdkit_error. */
extern int volume_set_store_start (struct volume_set_store *vs,
                                   const char *name);
/* Stop the catch-up thread, free the engine and the store. */
extern void volume_set_store_close (struct volume_set_store *vs);

/* Is location LOC up?  How many chunks does it lack? */
extern bool volume_set_store_is_up (const struct volume_set_store *vs,
                                    unsigned loc);
extern uint64_t volume_set_store_lacking (const struct volume_set_store *vs,
                                          unsigned loc);

#endif /* SHARDKIT_VOLUME_SET_H */
