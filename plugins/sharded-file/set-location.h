/* shardkit sharded-file: one location of a set (file-set.h), which may
 * not answer: its directory found again by its path, the volume in it
 * opened when it answers, and a store that forwards to that volume.
 * GPL-3.0-or-later.
 *
 * A set opens with some locations missing (a directory gone, metadata
 * unreadable) as long as enough answer (mirror_store_min_up); the mirror
 * needs a store for each location all the same, to use once the probe
 * says it answers.  The store here is that: it forwards to the volume
 * opened by set_location_open or set_location_reopen, and fails with
 * EIO while there is none (the mirror never asks a location that is
 * down).
 *
 * The directory is held by a descriptor of its own, opened from the
 * path: a directory renamed away keeps its descriptor working, so the
 * location is also watched by path (set_location_moved): when the path
 * no longer names the directory it holds, the set treats it as gone.
 */
#ifndef SHARDKIT_SET_LOCATION_H
#define SHARDKIT_SET_LOCATION_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "chunk-engine.h"
#include "file-volume.h"

#define SET_LOCATION_RETIRED_MAX 8

struct set_location {
  const char *path;             /* borrowed: the dir= given */
  int dirfd;                    /* -1 while it never answered */
  dev_t dev;                    /* of dirfd */
  ino_t ino;
  struct file_volume *v;        /* atomic: NULL until it answers */
  /* Volumes replaced by a reopen (the path named another directory).
   * Kept until close: a request that started before may still use one.
   */
  struct file_volume *retired[SET_LOCATION_RETIRED_MAX];
  int retired_fds[SET_LOCATION_RETIRED_MAX];
  unsigned nretired;
  char why[256];                /* why it did not answer */
};

/* The absolute path of the location given as VALUE (dir=, or in the
 * volume tool's DIR1,DIR2,...), which may not exist: a set goes on
 * without it, and finds it there when it is back.  Returns a string to
 * free, or NULL with errno.
 */
extern char *set_location_path (const char *value);

/* Volume NAME's metadata in the directory PATH, opened by its path:
 * 1 with *M, 0 if it is not there, -1 if the directory or the metadata
 * cannot be read.  (volume_set_create's read_meta.)
 */
extern int set_location_read_meta (const char *path, const char *name,
                                   struct volume_meta *m);
/* Create volume NAME in the directory PATH with metadata *M: 0, or -1
 * after nbdkit_error.
 */
extern int set_location_create_meta (const char *path, const char *name,
                                     const struct volume_meta *m);

/* Open volume NAME in the directory PATH into L (see file_volume_open
 * for READONLY, FLAGS, MAX_OPEN_FILES).  Returns 0 if it answers, 1 if
 * it does not (L->why says why; nothing logged for a directory or a
 * volume that is not there), -1 after nbdkit_error if it must be
 * refused (another process holds the volume: EWOULDBLOCK).
 */
extern int set_location_open (struct set_location *l, const char *path,
                              const char *name, bool readonly,
                              unsigned flags, size_t max_open_files);

/* Does the path of L name another directory than the one held, or
 * none?  Also true for a location that never answered.
 */
extern bool set_location_moved (const struct set_location *l);

/* Open the volume again from the path (it moved, or never answered),
 * quietly while it is not there.  Returns the new volume (not yet L's:
 * see set_location_install) or NULL.  *FD gets its directory.
 */
extern struct file_volume *set_location_reopen (const struct set_location *l,
                                                const char *name,
                                                size_t max_open_files,
                                                int *fd);
/* Make V (from set_location_reopen, directory FD) L's volume; the old
 * one is retired.  Returns 0, or -1 (too many replacements: V closed).
 */
extern int set_location_install (struct set_location *l,
                                 struct file_volume *v, int fd);

extern void set_location_close (struct set_location *l);

/* Does location LOC of set SET (as volume_set_check_location checks it)
 * answer again (store_set's probe)?  Where its path names the directory
 * held, as file_volume_probe says.  Where it never answered, or its
 * path names another directory now, volume NAME is opened there afresh
 * and checked against FIRST (the set's metadata); a location down since
 * the open lacks what the records say, one that came back as another
 * directory may be any old copy: 1, caught up in full.  On a reopen
 * RECORDS (missing-file.h) get its new directory.  0, 1, or -1.
 */
struct volume_set_params;
struct volume_meta;
struct missing_files;
extern int set_location_probe (struct set_location *l, unsigned loc,
                               const struct volume_set_params *set,
                               const struct volume_meta *first,
                               const char *name, size_t max_open_files,
                               struct missing_files *records);

/* The forwarding store; its opaque is the struct set_location. */
extern const struct chunk_store_ops set_location_ops;

#endif /* SHARDKIT_SET_LOCATION_H */
