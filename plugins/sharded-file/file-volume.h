/* shardkit sharded-file: one volume in a directory (NAME.meta and
 * NAME.<n>.chunk files), with its chunk engine and file store.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_FILE_VOLUME_H
#define SHARDKIT_FILE_VOLUME_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "volume-layer.h"
#include "volume-meta.h"

struct file_volume {
  char *name;
  const char *dirname;          /* for messages */
  int dirfd;                    /* borrowed from the plugin */
  int meta_fd;                  /* holds the flock for the volume */
  bool readonly;
  struct volume_meta meta;
  struct fd_cache *fds;
  bool dir_dirty;               /* entries created/removed since last sync */
  /* Syncs (flush, FUA) run one at a time, so that a flush never returns
   * while an earlier one is still making the data it covers durable.
   */
  pthread_mutex_t sync_lock;
  /* Once an fdatasync or fsync has failed, Linux may have dropped the
   * dirty pages and will not report the loss again: every later flush
   * fails with this errno rather than claim durability.
   */
  int sync_failed;
  struct chunk_engine *engine;
};

/* Open volume NAME in the directory DIRFD (called DIRNAME in messages).
 * Takes a shared (READONLY) or exclusive lock on it, which fails at once
 * if another process holds a conflicting one.  CREATE may be NULL.
 * Returns NULL after nbdkit_error on failure.
 */
extern struct file_volume *file_volume_open (int dirfd, const char *dirname,
                                             const char *name, bool readonly,
                                             const struct volume_create *create,
                                             size_t max_open_files);
extern void file_volume_close (struct file_volume *v);

/* Create the volume NAME if missing (atomically), or check that an
 * existing one matches CREATE.  Then check that no other process serves it
 * read-write.  Used at start-up so that mistakes fail early.
 */
extern int file_volume_prepare (int dirfd, const char *dirname,
                                const char *name,
                                const struct volume_create *create);

#endif /* SHARDKIT_FILE_VOLUME_H */
