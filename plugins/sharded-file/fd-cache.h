/* shardkit sharded-file: a bounded cache of open chunk file descriptors.
 * GPL-3.0-or-later.
 *
 * A 1 TiB volume has 262144 chunk files at 4 MiB; keeping one descriptor
 * per chunk would exceed any sane RLIMIT_NOFILE.  The cache keeps at most
 * MAX descriptors, closing the least recently used idle one first.  It
 * also remembers which files were written since the last sync, so that a
 * flush can make every acknowledged write durable.
 *
 * A descriptor with unsynced writes is fdatasync'd before it is closed
 * (eviction, shutdown), never closed as it is: once the last descriptor
 * of a file is closed, a later write-back error of its pages may never be
 * reported to anyone (the kernel can drop the inode, and with it the
 * error, before the next flush reopens the file).  A failed fdatasync
 * there is remembered, and every later fd_cache_sync fails: the pages
 * may be gone, so a later sync's success would be a lie.
 */
#ifndef SHARDKIT_FD_CACHE_H
#define SHARDKIT_FD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fd_cache;

/* Opens chunk N relative to the cache's directory.  CREATE: create it if
 * missing (sets *CREATED).  Returns an fd, or -1 with errno set; with
 * !CREATE a missing file gives -1 and errno ENOENT.
 */
typedef int (*fd_cache_open_fn) (void *opaque, uint64_t n, bool create,
                                 bool *created);

extern struct fd_cache *fd_cache_new (size_t max, fd_cache_open_fn open_fn,
                                      void *opaque);
/* Closes every descriptor, fdatasyncing those with unsynced writes first
 * (a failure is logged: nobody is left to tell).  No other thread may
 * use the cache any more.
 */
extern void fd_cache_free (struct fd_cache *c);

/* Get the descriptor of chunk N, opening it if needed; hold it until
 * fd_cache_put.  Returns the fd, or -1 with errno set.
 */
extern int fd_cache_get (struct fd_cache *c, uint64_t n, bool create,
                         bool *created);
/* Release a descriptor got from fd_cache_get.  DIRTIED: it was written
 * and not yet made durable.
 */
extern void fd_cache_put (struct fd_cache *c, uint64_t n, bool dirtied);
/* Close chunk N's descriptor (the file has just been removed) and forget
 * that it needed a sync, without syncing it: the removal supersedes its
 * contents, so losing their write-back loses nothing a client can read.
 * The caller holds the chunk's exclusive lock, so nobody else but a
 * running fd_cache_sync holds the descriptor.
 */
extern void fd_cache_forget (struct fd_cache *c, uint64_t n);
/* fdatasync every file written since the last sync, and wait for the
 * fdatasyncs of descriptors being closed meanwhile.  Returns 0, or -1
 * with errno set and *LOST: true when an fdatasync failed, now or at an
 * earlier close (errno EIO; every later call fails the same way), false
 * when the failure was transient (ENOMEM: a later call may succeed).
 */
extern int fd_cache_sync (struct fd_cache *c, bool *lost);

/* Forget a failed fdatasync (the sticky failure above), returning
 * whether there was one.  Only for an owner that no longer relies on
 * the lost writes: a location of a mirror, which is then copied in
 * full from the others.
 */
extern bool fd_cache_forget_lost (struct fd_cache *c);

#endif /* SHARDKIT_FD_CACHE_H */
