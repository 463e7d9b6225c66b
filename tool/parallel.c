/* shardkit volume tool: chunks worked on by --jobs threads, and the
 * problems they find.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "parallel.h"

#define JOBS_MAX 256            /* as --jobs takes */

void
run_workers (unsigned jobs, void *(*worker) (void *), void *arg)
{
  pthread_t threads[JOBS_MAX];
  unsigned i, started = 0;

  if (jobs > JOBS_MAX)
    jobs = JOBS_MAX;
  for (i = 1; i < jobs; ++i) {
    int err = pthread_create (&threads[started], NULL, worker, arg);
    if (err) {
      errno = err;
      nbdkit_debug ("pthread_create: %m: working with %u jobs", i);
      break;
    }
    started++;
  }
  worker (arg);
  for (i = 0; i < started; ++i)
    pthread_join (threads[i], NULL);
}

void
problems_init (struct problems *p)
{
  memset (p, 0, sizeof *p);
  pthread_mutex_init (&p->lock, NULL);
}

void
problems_add (struct problems *p, uint64_t n, const char *what)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&p->lock);
  if (p->len == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    struct problem *v = realloc (p->v, cap * sizeof *v);
    if (v == NULL) {
      p->failed = true;
      return;
    }
    p->v = v;
    p->cap = cap;
  }
  p->v[p->len].chunk = n;
  p->v[p->len].what = strdup (what);
  if (p->v[p->len].what == NULL) {
    p->failed = true;
    return;
  }
  p->len++;
}

void
problems_fail (struct problems *p)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&p->lock);
  p->failed = true;
}

static int
compare_problems (const void *a, const void *b)
{
  const struct problem *p = a, *q = b;
  return p->chunk < q->chunk ? -1 : p->chunk > q->chunk;
}

void
problems_sort (struct problems *p)
{
  if (p->len)
    qsort (p->v, p->len, sizeof *p->v, compare_problems);
}

void
problems_free (struct problems *p)
{
  size_t i;

  for (i = 0; i < p->len; ++i)
    free (p->v[i].what);
  free (p->v);
  pthread_mutex_destroy (&p->lock);
  p->v = NULL;
  p->len = p->cap = 0;
}
