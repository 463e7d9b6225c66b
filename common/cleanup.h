/* shardkit: cleanup attributes, so error paths need no goto ladders.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_CLEANUP_H
#define SHARDKIT_CLEANUP_H

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static inline void
cleanup_free_fn (void *ptr)
{
  free (*(void **) ptr);
}
#define CLEANUP_FREE __attribute__ ((cleanup (cleanup_free_fn)))

static inline void
cleanup_close_fn (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}
#define CLEANUP_CLOSE __attribute__ ((cleanup (cleanup_close_fn)))

static inline void
cleanup_unlock_fn (pthread_mutex_t **m)
{
  if (*m)
    pthread_mutex_unlock (*m);
}
/* Lock a mutex until the end of the enclosing scope. */
#define SCOPED_LOCK_CAT2(a, b) a##b
#define SCOPED_LOCK_CAT(a, b) SCOPED_LOCK_CAT2 (a, b)
#define ACQUIRE_LOCK_FOR_CURRENT_SCOPE(mutex)                           \
  __attribute__ ((cleanup (cleanup_unlock_fn)))                         \
  pthread_mutex_t *SCOPED_LOCK_CAT (scoped_lock_, __LINE__) = (mutex);  \
  pthread_mutex_lock (SCOPED_LOCK_CAT (scoped_lock_, __LINE__))

#endif /* SHARDKIT_CLEANUP_H */
