/* shardkit sharded-file: one volume in a directory (NAME.meta and
 * NAME.<n>.chunk files), with its chunk engine and file store.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_FILE_VOLUME_H
#define SHARDKIT_FILE_VOLUME_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "chunk-engine.h"
#include "volume-layer.h"
#include "volume-meta.h"
#include "volume-chain.h"
#include "volume-name.h"

struct file_volume {
  char *name;
  const char *dirname;          /* for messages */
  int dirfd;                    /* borrowed from the plugin */
  int meta_fd;                  /* holds the flock for the volume */
  bool readonly;
  struct volume_meta meta;
  /* The stem of its own chunks' names: NAME, NAME@<generation>, or for
   * a snapshot its data= (see volume-name.h, chunk generations).
   */
  char stem[VOLUME_CHUNK_STEM_MAX];
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
  /* A volume with base= reads through to its base, opened read-only
   * (without an engine: only its store is used), via an overlay.
   */
  struct file_volume *base;
  struct overlay_store *overlay;
  /* What the engine (or a volume above this one) uses: the file store
   * over this volume's own chunks, or the overlay.
   */
  struct chunk_store store;
  struct chunk_engine *engine;  /* NULL in a base */
};

/* Open volume NAME in the directory DIRFD (called DIRNAME in messages).
 * Takes a shared (READONLY) or exclusive lock on it, which fails at once
 * if another process holds a conflicting one.  CREATE may be NULL.
 * A volume with base= opens its chain of bases read-only (shared locks)
 * and reads through them; a broken chain (a missing base, a uuid that
 * does not match, a cycle, more than OVERLAY_MAX_DEPTH bases) is
 * refused with one line.  A snapshot (read-only=1) is never written,
 * whatever READONLY says, and with FLAGS VOLUME_OPEN_SERVE (a server,
 * not the volume tool, which locks a snapshot exclusively to delete
 * it) its lock is taken shared.  With VOLUME_OPEN_OWN_CHUNKS the bases
 * are not opened.  Returns NULL after nbdkit_error on failure.
 */
extern struct file_volume *file_volume_open (int dirfd, const char *dirname,
                                             const char *name, bool readonly,
                                             unsigned flags,
                                             const struct volume_create *create,
                                             size_t max_open_files);
extern void file_volume_close (struct file_volume *v);

/* The same without an engine: one location of a set of them, whose
 * store the set's store (a mirror) is built on.
 */
extern struct file_volume *file_volume_open_location (int dirfd,
                                                      const char *dirname,
                                                      const char *name,
                                                      bool readonly,
                                                      unsigned flags,
                                                      const struct volume_create *create,
                                                      size_t max_open_files);

/* Does the location of V answer again (its metadata is there and a
 * file can be made in its directory)?  Returns 0 if it does, 1 if it
 * does but a sync had failed (writes since the last good sync may be
 * lost: the set catches it up in full; the failure is forgotten), -1
 * if not.  Logs nothing: it is called again and again while a location
 * is down.
 */
extern int file_volume_probe (struct file_volume *v);

/* Create the volume NAME if missing (atomically), or check that an
 * existing one matches CREATE.  Then check that no other process serves it
 * read-write.  Used at start-up so that mistakes fail early.
 */
extern int file_volume_prepare (int dirfd, const char *dirname,
                                const char *name,
                                const struct volume_create *create);

/* Create volume NAME (its NAME.meta, atomically) of SIZE bytes in
 * chunks of CHUNK_SIZE.  Returns 0, or -1 after nbdkit_error (errno
 * EEXIST if a volume of that name exists).  For the volume tool.
 */
extern int file_volume_create (int dirfd, const char *dirname,
                               const char *name, uint64_t size,
                               uint32_t chunk_size);

/* Read NAME.meta without opening the volume (no lock: for looking at
 * a volume that may be in use).  Returns 1 with *M filled, 0 if there
 * is no such volume, -1 after nbdkit_error (errno EIO if it is corrupt).
 */
extern int file_volume_read_meta (int dirfd, const char *dirname,
                                  const char *name, struct volume_meta *m);

/* Replace NAME.meta of V (open read-write, so its lock is held) by *M,
 * atomically (a temporary file renamed over it).  The lock stays on the
 * old file until V is closed, which ends the tool's work on it anyway.
 * Returns 0, or -1 after nbdkit_error.  For the volume tool's resize.
 */
extern int file_volume_rewrite_meta (struct file_volume *v,
                                     const struct volume_meta *m);

/* Remove NAME.meta of V (open read-write), and sync the directory.
 * Returns 0, or -1 after nbdkit_error.  For the volume tool's delete,
 * once every chunk is gone.
 */
extern int file_volume_remove_meta (struct file_volume *v);

/* Create volume NAME with metadata *M (atomically; EEXIST if the name
 * is taken).  Returns 0, or -1 after nbdkit_error.  For the volume
 * tool's snapshot and clone.
 */
extern int file_volume_create_meta (int dirfd, const char *dirname,
                                    const char *name,
                                    const struct volume_meta *m);

#endif /* SHARDKIT_FILE_VOLUME_H */
