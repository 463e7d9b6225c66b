/* shardkit: a small pool of worker threads that runs a group of tasks
 * side by side and waits for all of them.
 * GPL-3.0-or-later.
 *
 * For stores of stores that send one operation to several stores at
 * once (a mirror's copies, later an EC set's fragments): the caller
 * runs the first task itself and the pool the others, so a group of N
 * costs N-1 hand-offs and no thread creation.  A caller waiting for
 * its group runs that group's tasks no worker has taken yet, so a busy
 * pool delays a group but can never deadlock it.
 *
 * Threads do not survive fork: create the pool in the process that
 * serves (a volume is opened by a connection, after nbdkit forked).
 */
#ifndef SHARDKIT_TASK_POOL_H
#define SHARDKIT_TASK_POOL_H

#include <stddef.h>

struct task_pool;

/* A pool of THREADS workers; 0 is a pool that runs every task in the
 * caller, one after the other.  NULL after nbdkit_error.
 */
extern struct task_pool *task_pool_new (const char *name, unsigned threads);
extern void task_pool_free (struct task_pool *p);

/* Run FN (ARGS[i]) for i in [0, COUNT) side by side (ARGS[0] in the
 * calling thread) and return once every call has returned.  A group
 * larger than TASK_POOL_MAX_GROUP runs in the caller, one after another.
 */
#define TASK_POOL_MAX_GROUP 32

extern void task_pool_run (struct task_pool *p, void (*fn) (void *arg),
                           void *const *args, size_t count);

#endif /* SHARDKIT_TASK_POOL_H */
