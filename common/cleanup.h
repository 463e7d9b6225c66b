/* shardkit: cleanup attributes, so error paths need no goto ladders.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_CLEANUP_H
#define SHARDKIT_CLEANUP_H

#include <assert.h>
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

/* Unlocking a lock this thread does not hold is a bug that corrupts
 * the lock: stop rather than carry on (as nbdkit's common/utils/cleanup.h
 * does).
 */
static inline void
cleanup_rwlock_unlock (pthread_rwlock_t **l)
{
  if (*l) {
    int r = pthread_rwlock_unlock (*l);
    assert (r == 0);
    (void) r;
  }
}
/* A pointer to a read/write lock held by this thread, or NULL, unlocked
 * at the end of the enclosing scope:
 *
 *   CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *locked = NULL;
 *   if (timed_lock (&h->lock, deadline) == -1)
 *     return -1;
 *   locked = &h->lock;
 */
#define CLEANUP_RWLOCK_UNLOCK __attribute__ ((cleanup (cleanup_rwlock_unlock)))

static inline pthread_rwlock_t *
scoped_rdlock (pthread_rwlock_t *l)
{
  int r = pthread_rwlock_rdlock (l);
  assert (r == 0);
  (void) r;
  return l;
}

static inline pthread_rwlock_t *
scoped_wrlock (pthread_rwlock_t *l)
{
  int r = pthread_rwlock_wrlock (l);
  assert (r == 0);
  (void) r;
  return l;
}

/* Lock a read/write lock, shared or exclusive, until the end of the
 * enclosing scope.
 */
#define ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE(rwlock)                        \
  CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *                              \
  SCOPED_LOCK_CAT (scoped_rwlock_, __LINE__) = scoped_rdlock (rwlock)
#define ACQUIRE_WRLOCK_FOR_CURRENT_SCOPE(rwlock)                        \
  CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *                              \
  SCOPED_LOCK_CAT (scoped_rwlock_, __LINE__) = scoped_wrlock (rwlock)

/* Helpers for the libraries of the suite, each defined only where the
 * library's header was included first (include it before cleanup.h, as
 * system headers come before local ones).  Their names are not those of
 * the local copies that some files still define, so that those keep
 * building until they switch.
 */

#ifdef NBDKIT_FILTER_H
/* A list from nbdkit_extents_new (filters only). */
static inline void
cleanup_extents_free (struct nbdkit_extents **e)
{
  if (*e)
    nbdkit_extents_free (*e);
}
#define CLEANUP_EXTENTS_FREE __attribute__ ((cleanup (cleanup_extents_free)))
#endif

#ifdef CURLINC_CURL_H
/* A list of HTTP headers from curl_slist_append. */
static inline void
cleanup_curl_slist_free (struct curl_slist **l)
{
  curl_slist_free_all (*l);
}
#define CLEANUP_CURL_SLIST_FREE \
  __attribute__ ((cleanup (cleanup_curl_slist_free)))
#endif

#ifdef __XML_TREE_H__
/* A parsed XML document (libxml2). */
static inline void
cleanup_xml_doc_free (xmlDocPtr *doc)
{
  if (*doc)
    xmlFreeDoc (*doc);
}
#define CLEANUP_XML_DOC_FREE __attribute__ ((cleanup (cleanup_xml_doc_free)))
#endif

#endif /* SHARDKIT_CLEANUP_H */
