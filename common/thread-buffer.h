/* shardkit: a scratch buffer per thread, kept between requests.
 * GPL-3.0-or-later.
 *
 * A request that needs a chunk-sized buffer of its own (the engine's
 * read-modify-write, s3-object's ranged reads) used to malloc one each
 * time.  At 4 MiB that is an mmap, 1024 page faults, the kernel zeroing
 * each page and an munmap per request; perf showed page faults as a
 * large part of nbdkit's CPU.  A buffer kept per thread is faulted in
 * once.  Buffers above THREAD_BUFFER_KEEP are not kept (a volume with
 * 1 GiB chunks must not pin 1 GiB per nbdkit thread): those are
 * malloc'd and freed as before.
 *
 *   static struct thread_buffer scratch = THREAD_BUFFER_INIT;
 *   void *p = thread_buffer_get (&scratch, size);
 *   ... use p; do not free it, do not call thread_buffer_get on the
 *   same struct again while p is in use ...
 *   thread_buffer_put (&scratch, p);
 */
#ifndef SHARDKIT_THREAD_BUFFER_H
#define SHARDKIT_THREAD_BUFFER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define THREAD_BUFFER_KEEP (8u << 20)

struct thread_buffer {
  bool ready;                   /* key made (or failed): set once */
  bool keep;                    /* the key exists: buffers are kept */
  pthread_key_t key;
};
#define THREAD_BUFFER_INIT { .ready = false }

/* SIZE bytes, contents undefined, or NULL with errno set (ENOMEM). */
extern void *thread_buffer_get (struct thread_buffer *tb, size_t size);

/* Done with P (from thread_buffer_get on TB; NULL is fine). */
extern void thread_buffer_put (struct thread_buffer *tb, void *p);

#endif
