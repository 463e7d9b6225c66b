/* shardkit: a pool of worker threads for groups of tasks.
 * GPL-3.0-or-later.  See task-pool.h.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "task-pool.h"

struct group;

/* One queued task; lives in the caller's frame until it has run. */
struct task {
  void (*fn) (void *arg);
  void *arg;
  struct group *group;
  struct task *next;
};

struct group {
  size_t pending;               /* tasks not finished; under the pool lock */
  pthread_cond_t done;
};

struct task_pool {
  pthread_mutex_t lock;
  pthread_cond_t work;          /* a task queued, or stopping */
  struct task *head, *tail;
  bool stopping;
  pthread_t *threads;
  unsigned nthreads;
};

/* Take the first queued task (of GROUP only, if not NULL).  Called with
 * the lock held.
 */
static struct task *
dequeue (struct task_pool *p, const struct group *group)
{
  struct task **pp, *prev = NULL;

  for (pp = &p->head; *pp; prev = *pp, pp = &(*pp)->next) {
    struct task *t = *pp;
    if (group && t->group != group)
      continue;
    *pp = t->next;
    if (p->tail == t)
      p->tail = prev;
    return t;
  }
  return NULL;
}

/* Run T without the lock, then count it done. */
static void
run_task (struct task_pool *p, struct task *t)
{
  struct group *g = t->group;

  pthread_mutex_unlock (&p->lock);
  t->fn (t->arg);
  pthread_mutex_lock (&p->lock);
  if (--g->pending == 0)
    pthread_cond_signal (&g->done);
}

static void *
worker (void *arg)
{
  struct task_pool *p = arg;

  pthread_mutex_lock (&p->lock);
  for (;;) {
    struct task *t = dequeue (p, NULL);
    if (t)
      run_task (p, t);
    else if (p->stopping)
      break;
    else
      pthread_cond_wait (&p->work, &p->lock);
  }
  pthread_mutex_unlock (&p->lock);
  return NULL;
}

struct task_pool *
task_pool_new (const char *name, unsigned threads)
{
  struct task_pool *p;
  unsigned i;
  int err;

  p = calloc (1, sizeof *p);
  if (p == NULL || (threads && (p->threads = calloc (threads,
                                                     sizeof *p->threads))
                                == NULL)) {
    nbdkit_error ("%s: calloc: %m", name);
    free (p);
    return NULL;
  }
  pthread_mutex_init (&p->lock, NULL);
  pthread_cond_init (&p->work, NULL);
  for (i = 0; i < threads; ++i) {
    err = pthread_create (&p->threads[i], NULL, worker, p);
    if (err) {
      errno = err;
      nbdkit_error ("%s: pthread_create: %m", name);
      task_pool_free (p);
      errno = err;
      return NULL;
    }
    p->nthreads = i + 1;
  }
  return p;
}

void
task_pool_free (struct task_pool *p)
{
  unsigned i;

  if (p == NULL)
    return;
  pthread_mutex_lock (&p->lock);
  p->stopping = true;
  pthread_cond_broadcast (&p->work);
  pthread_mutex_unlock (&p->lock);
  for (i = 0; i < p->nthreads; ++i)
    pthread_join (p->threads[i], NULL);
  pthread_cond_destroy (&p->work);
  pthread_mutex_destroy (&p->lock);
  free (p->threads);
  free (p);
}

void
task_pool_run (struct task_pool *p, void (*fn) (void *arg),
               void *const *args, size_t count)
{
  struct task tasks[TASK_POOL_MAX_GROUP];
  struct group g = { .pending = count };
  struct task *t;
  size_t i;

  if (count == 0)
    return;
  if (p->nthreads == 0 || count == 1 || count > TASK_POOL_MAX_GROUP) {
    for (i = 0; i < count; ++i)
      fn (args[i]);
    return;
  }
  pthread_cond_init (&g.done, NULL);
  pthread_mutex_lock (&p->lock);
  for (i = 1; i < count; ++i) {
    tasks[i] = (struct task) { .fn = fn, .arg = args[i], .group = &g };
    if (p->tail)
      p->tail->next = &tasks[i];
    else
      p->head = &tasks[i];
    p->tail = &tasks[i];
  }
  pthread_cond_broadcast (&p->work);
  tasks[0] = (struct task) { .fn = fn, .arg = args[0], .group = &g };
  run_task (p, &tasks[0]);
  /* Help with what no worker has taken, then wait for the rest. */
  while ((t = dequeue (p, &g)) != NULL)
    run_task (p, t);
  while (g.pending > 0)
    pthread_cond_wait (&g.done, &p->lock);
  pthread_mutex_unlock (&p->lock);
  pthread_cond_destroy (&g.done);
}
