/* shardkit: a scratch buffer per thread (see thread-buffer.h).
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "thread-buffer.h"

/* What a thread keeps under the key: the buffer and its size.  Freed
 * by the key's destructor (libc's free: the plugin may be unloaded
 * before the last thread ends) when the thread exits.
 */
struct kept {
  size_t size;
  _Alignas (16) unsigned char data[];
};

/* The key of each struct is made on its first use (pthread_once takes
 * no argument, so one lock serves them all).
 */
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;

static bool
keeps (struct thread_buffer *tb)
{
  if (!__atomic_load_n (&tb->ready, __ATOMIC_ACQUIRE)) {
    pthread_mutex_lock (&keys_lock);
    if (!tb->ready) {
      tb->keep = pthread_key_create (&tb->key, free) == 0;
      __atomic_store_n (&tb->ready, true, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock (&keys_lock);
  }
  return tb->keep;
}

void *
thread_buffer_get (struct thread_buffer *tb, size_t size)
{
  struct kept *k;

  if (size > THREAD_BUFFER_KEEP || !keeps (tb))
    return malloc (size);
  k = pthread_getspecific (tb->key);
  if (k == NULL || k->size < size) {
    /* Grow to the largest size this thread has needed; the contents do
     * not matter, so no realloc copy.
     */
    free (k);
    pthread_setspecific (tb->key, NULL);
    k = malloc (sizeof *k + size);
    if (k == NULL)
      return NULL;
    k->size = size;
    if (pthread_setspecific (tb->key, k) != 0) {
      free (k);
      errno = ENOMEM;
      return NULL;
    }
  }
  return k->data;
}

void
thread_buffer_put (struct thread_buffer *tb, void *p)
{
  struct kept *k;

  if (p == NULL)
    return;
  /* A kept buffer stays with its thread; one too large to keep (or
   * malloc'd because the key could not be made) is freed.
   */
  if (keeps (tb) && (k = pthread_getspecific (tb->key)) != NULL &&
      p == k->data)
    return;
  free (p);
}
