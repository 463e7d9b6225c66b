/* shardkit volume tool: chunks worked on by --jobs threads, and the
 * problems they find (check, copy).
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_TOOL_PARALLEL_H
#define SHARDKIT_TOOL_PARALLEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Run WORKER (ARG) in JOBS threads at once, this one among them, and
 * return when all have returned.  If a thread cannot be made, the
 * others do its share.
 */
extern void run_workers (unsigned jobs, void *(*worker) (void *), void *arg);

/* A problem found with one chunk, and a list of them that several
 * threads add to.
 */
struct problem {
  uint64_t chunk;
  char *what;
};

struct problems {
  pthread_mutex_t lock;
  struct problem *v;
  size_t len, cap;
  bool failed;                  /* out of memory: the work itself failed */
};

extern void problems_init (struct problems *p);
/* Add a problem with chunk N (WHAT copied); on failure p->failed. */
extern void problems_add (struct problems *p, uint64_t n, const char *what);
/* Set p->failed (out of memory somewhere else). */
extern void problems_fail (struct problems *p);
/* In order of chunk number. */
extern void problems_sort (struct problems *p);
extern void problems_free (struct problems *p);

#endif
