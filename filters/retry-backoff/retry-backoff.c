/* shardkit: nbdkit retry-backoff filter.
 * GPL-3.0-or-later.
 *
 * Retries requests that fail with a transient errno, with exponential
 * backoff and full jitter, a bound on attempts and a deadline per request,
 * and reopens the plugin context after a run of consecutive failures (see
 * nbdkit-retry-backoff-filter(1)).
 *
 * Concurrency: nbdkit's own retry filter serializes requests because
 * reopening under a request in flight is unsafe.  We keep the parallel
 * thread model instead (a store such as S3 needs requests in parallel to
 * be fast) and protect the plugin context with a per-connection
 * reader/writer lock: each attempt holds it shared for the duration of
 * the call into the plugin only, a reopen holds it exclusive, so a reopen
 * waits for the attempts in flight and never pulls a context from under
 * one.  Nobody holds the lock while sleeping between attempts.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nbdkit-filter.h>

#include "backoff.h"
#include "cleanup.h"
#include "duration.h"
#include "errno-policy.h"
#include "params.h"

/* Parameters. */
static struct backoff schedule = {
  .first = 100 * NS_PER_MS,                         /* retry-delay= */
  .max = 10 * NS_PER_S,                             /* retry-max-delay= */
  .jitter = BACKOFF_FULL_JITTER,
};
static uint64_t retry_deadline = 60 * NS_PER_S;     /* retry-deadline= */
static unsigned retries = 8;      /* retries=: attempts in all, first included */
static unsigned reopen_after = 3;                   /* reopen-after= */
static bool retry_readonly;                         /* retry-readonly= */
static struct errno_policy policy;                  /* defaults + retry-on= */

/* Keep a typo from silently disabling retries for a day. */
#define MAX_RETRIES 1000

static void
retry_backoff_load (void)
{
  errno_policy_init (&policy);
}

static int
retry_backoff_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                      const char *key, const char *value)
{
  if (strcmp (key, "retry-delay") == 0)
    return param_duration (key, value, &schedule.first);
  if (strcmp (key, "retry-max-delay") == 0)
    return param_duration (key, value, &schedule.max);
  if (strcmp (key, "retry-deadline") == 0) {
    if (param_duration (key, value, &retry_deadline) == -1)
      return -1;
    if (retry_deadline == 0) {
      nbdkit_error ("retry-deadline='%s': must be more than 0", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "retries") == 0) {
    if (param_unsigned (key, value, MAX_RETRIES, &retries) == -1)
      return -1;
    if (retries == 0) {
      nbdkit_error ("retries='%s': must be at least 1 (it counts the first "
                    "attempt too: 1 = no retries)", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "reopen-after") == 0)
    return param_unsigned (key, value, MAX_RETRIES, &reopen_after);
  if (strcmp (key, "retry-readonly") == 0)
    return param_bool (key, value, &retry_readonly);
  if (strcmp (key, "retry-on") == 0) {
    char why[128];

    if (errno_policy_add_list (&policy, value, why, sizeof why) == -1) {
      nbdkit_error ("retry-on='%s': %s", value, why);
      return -1;
    }
    return 0;
  }
  return next (nxdata, key, value);
}

static int
retry_backoff_config_complete (nbdkit_next_config_complete *next,
                               nbdkit_backend *nxdata)
{
  if (schedule.max < schedule.first) {
    char d[32], m[32];

    format_duration (schedule.first, d, sizeof d);
    format_duration (schedule.max, m, sizeof m);
    nbdkit_error ("retry-max-delay=%s is less than retry-delay=%s", m, d);
    return -1;
  }
  return next (nxdata);
}

#define retry_backoff_config_help \
  "retries=<N>               Attempts of a request in all, the first\n" \
  "                          included (default 8; 1 = no retries).\n" \
  "retry-delay=<DURATION>    First delay ceiling, doubled per retry\n" \
  "                          (default 100ms).\n" \
  "retry-max-delay=<DURATION> Largest delay ceiling (default 10s).\n" \
  "retry-deadline=<DURATION> No attempt later than this after the first\n" \
  "                          (default 60s).\n" \
  "reopen-after=<N>          Reopen the plugin after N consecutive failures\n" \
  "                          (default 3; 0 = never).\n" \
  "retry-on=<ERRNO>[,...]    More errnos to retry, besides EIO, ETIMEDOUT,\n" \
  "                          EAGAIN, ESHUTDOWN, ECONNRESET, ECONNREFUSED,\n" \
  "                          ENOTCONN, EPIPE.\n" \
  "retry-readonly=true|false Go read-only once writes are refused (EROFS,\n" \
  "                          or EPERM/EACCES twice in a row; default false)."

/* What an attempt or a reopen came to. */
enum {
  DONE = 0,
  FAILED = -1,          /* *err set: retry if transient. */
  TIMED_OUT = -2,       /* The deadline passed waiting for the lock. */
  PERMANENT = -3,       /* *err set: do not retry, whatever the errno. */
};

/* Per connection. */
struct handle {
  nbdkit_context *context;      /* For nbdkit_context_get_backend/set_next. */
  char *exportname;
  bool readonly;                /* As the client opened the connection. */

  pthread_rwlock_t lock;        /* See the comment at the top. */
  nbdkit_next *next;            /* Current plugin context; NULL after a
                                 * failed reopen until a reopen succeeds. */
  unsigned generation;          /* Reopens done (successful or not). */
  bool dead;                    /* Finalizing the old context failed:
                                 * no more reopens, every request fails
                                 * with ESHUTDOWN. */
  int64_t size;                 /* Export size, to check a reopen. */

  atomic_bool forced_readonly;  /* retry-readonly has kicked in. */
  atomic_uint refused_writes;   /* Write requests in a row refused with
                                 * EPERM or EACCES (retry-readonly). */
  atomic_uint consecutive;      /* Failed attempts in a row, any request. */

  /* For the summary at close. */
  atomic_uint_fast64_t requests_retried, retries, recoveries, give_ups,
    reopens, reopen_failures;
};

static uint64_t
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * NS_PER_S + (uint64_t) ts.tv_nsec;
}

/* A printable errno: "EIO", or the number. */
static const char *
ename (int err, char *buf, size_t len)
{
  const char *n = errno_name (err);

  if (n)
    return n;
  snprintf (buf, len, "errno %d", err);
  return buf;
}

static int
retry_backoff_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct handle *h = handle;

  /* nbdkit passes the current plugin context to every callback, but a
   * request sleeping between attempts must see a reopen done meanwhile by
   * another request, so requests use h->next under h->lock instead.
   */
  h->next = next;
  h->size = next->get_size (next);
  return h->size == -1 ? -1 : 0;
}

static void
retry_backoff_close (void *handle)
{
  struct handle *h = handle;

  nbdkit_debug ("retry-backoff: connection summary: "
                "%" PRIuFAST64 " requests retried, %" PRIuFAST64 " retries, "
                "%" PRIuFAST64 " recovered, %" PRIuFAST64 " gave up, "
                "%" PRIuFAST64 " reopens (%" PRIuFAST64 " failed)",
                (uint_fast64_t) h->requests_retried,
                (uint_fast64_t) h->retries, (uint_fast64_t) h->recoveries,
                (uint_fast64_t) h->give_ups, (uint_fast64_t) h->reopens,
                (uint_fast64_t) h->reopen_failures);
  /* The plugin context is nbdkit's to finalize and close, also when it
   * is one we opened (nbdkit_context_set_next handed it over).
   */
  pthread_rwlock_destroy (&h->lock);
  free (h->exportname);
  free (h);
}

/* Callbacks that only ask the plugin something.  The passthrough that
 * nbdkit would supply uses the context it passes in, which is NULL after
 * a failed reopen; a filter above us may ask for the first time just
 * then.  Answers come from the current context, or fail cleanly.
 */
static nbdkit_next *
current_next (struct handle *h)
{
  nbdkit_next *next = h->next;

  if (next == NULL)
    nbdkit_error ("the plugin context is closed: a reopen failed");
  return next;
}

#define FORWARD(type, fn, failed)                                       \
  static type                                                           \
  retry_backoff_##fn (nbdkit_next *unused, void *handle)                \
  {                                                                     \
    struct handle *h = handle;                                          \
    ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&h->lock);                        \
    nbdkit_next *next = current_next (h);                               \
                                                                        \
    return next ? next->fn (next) : (failed);                           \
  }
FORWARD (int64_t, get_size, -1)
FORWARD (const char *, export_description, NULL)
FORWARD (int, can_write, -1)
FORWARD (int, can_flush, -1)
FORWARD (int, is_rotational, -1)
FORWARD (int, can_trim, -1)
FORWARD (int, can_zero, -1)
FORWARD (int, can_fast_zero, -1)
FORWARD (int, can_extents, -1)
FORWARD (int, can_fua, -1)
FORWARD (int, can_multi_conn, -1)
FORWARD (int, can_cache, -1)
#undef FORWARD

static int
retry_backoff_block_size (nbdkit_next *unused, void *handle,
                          uint32_t *minimum, uint32_t *preferred,
                          uint32_t *maximum)
{
  struct handle *h = handle;
  ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&h->lock);
  nbdkit_next *next = current_next (h);

  return next ? next->block_size (next, minimum, preferred, maximum) : -1;
}

/* Take the lock, shared or exclusive, waiting no later than DEADLINE (on
 * now_ns's clock): a request must not wait past its deadline for other
 * requests' attempts in flight (a slow read holds the lock shared for as
 * long as the plugin takes).  Returns the lock, for a
 * CLEANUP_RWLOCK_UNLOCK pointer, or NULL when the deadline passed.
 */
static pthread_rwlock_t *
lock_until (struct handle *h, bool exclusive, uint64_t deadline)
{
  struct timespec ts = { .tv_sec = deadline / NS_PER_S,
                         .tv_nsec = deadline % NS_PER_S };
  int e;

  do
    e = exclusive
      ? pthread_rwlock_clockwrlock (&h->lock, CLOCK_MONOTONIC, &ts)
      : pthread_rwlock_clockrdlock (&h->lock, CLOCK_MONOTONIC, &ts);
  while (e == EINTR || e == EAGAIN);
  if (e == ETIMEDOUT)
    return NULL;
  if (e != 0)
    abort ();                   /* EDEADLK, EINVAL: a bug here. */
  return &h->lock;
}

/* 1 if the plugin context is closed (a failed reopen), 0 if not, -1 if
 * DEADLINE passed waiting for the lock.
 */
static int
context_closed (struct handle *h, uint64_t deadline)
{
  CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *locked =
    lock_until (h, false, deadline);

  if (locked == NULL)
    return -1;
  return h->next == NULL;
}

/* One request, as the client made it: every attempt repeats exactly this
 * (same buffer, offset, count and flags, FUA included).  NBD writes,
 * zeroes and trims at a fixed offset are idempotent, so repeating one that
 * may or may not have reached the store leaves the same result.
 * Opening the plugin at connect is a request too (OP_OPEN), so that it
 * follows the same policy, deadline and logging.
 */
enum op { OP_PREAD, OP_PWRITE, OP_FLUSH, OP_TRIM, OP_ZERO, OP_EXTENTS,
          OP_CACHE, OP_OPEN };
static const char *const op_names[] = {
  "pread", "pwrite", "flush", "trim", "zero", "extents", "cache", "open",
};

struct request {
  enum op op;
  void *rbuf;
  const void *wbuf;
  uint32_t count;
  uint64_t offset;
  uint32_t flags;
  struct nbdkit_extents *extents;
  /* OP_OPEN: */
  nbdkit_next_open *open;
  nbdkit_context *context;
  int readonly;
  const char *exportname;
};

static bool
is_write (enum op op)
{
  return op == OP_PWRITE || op == OP_TRIM || op == OP_ZERO;
}

/* nbdkit asserts that a request fits what the context it reaches
 * advertises.  The context nbdkit opened was checked at the handshake;
 * one we reopened may differ (read-only now, or a plugin that changed its
 * mind), so check, which also fills nbdkit's caches of these answers.
 * Returns DONE, FAILED (the plugin could not answer: transient) or
 * PERMANENT (the reopened export differs from what the client was
 * promised: no retry or further reopen makes that right).
 */
static int
check_reopened (struct handle *h, nbdkit_next *next, const struct request *r,
                int *err)
{
  int64_t size = next->get_size (next);

  if (size == -1) {
    *err = EIO;
    return FAILED;
  }
  if (size != h->size) {
    nbdkit_error ("the export changed size on reopen "
                  "(%" PRIi64 " to %" PRIi64 " bytes)", h->size, size);
    *err = EIO;
    return PERMANENT;
  }
  switch (r->op) {
  case OP_PWRITE:
  case OP_TRIM:
  case OP_ZERO:
    if (next->can_write (next) != 1 ||
        (r->op == OP_TRIM && next->can_trim (next) != 1) ||
        (r->op == OP_ZERO && next->can_zero (next) <= NBDKIT_ZERO_NONE)) {
      *err = EROFS;
      return PERMANENT;
    }
    if (r->op == OP_ZERO && (r->flags & NBDKIT_FLAG_FAST_ZERO) &&
        next->can_fast_zero (next) != 1) {
      *err = ENOTSUP;
      return PERMANENT;
    }
    if ((r->flags & NBDKIT_FLAG_FUA) &&
        next->can_fua (next) <= NBDKIT_FUA_NONE) {
      *err = EIO;
      return PERMANENT;
    }
    return DONE;
  case OP_FLUSH:
    if (next->can_flush (next) != 1) {
      *err = EIO;
      return PERMANENT;
    }
    return DONE;
  case OP_EXTENTS:
    if (next->can_extents (next) != 1) {
      *err = EIO;
      return PERMANENT;
    }
    return DONE;
  case OP_CACHE:
    if (next->can_cache (next) <= NBDKIT_CACHE_NONE) {
      *err = EIO;
      return PERMANENT;
    }
    return DONE;
  case OP_PREAD:
    return DONE;
  case OP_OPEN:                 /* Not an attempt on a context. */
    break;
  }
  abort ();
}

/* Extents: a failed attempt may have added some extents already, so each
 * attempt fills a fresh list and only a successful one is handed on.
 */
static int
extents_attempt (nbdkit_next *next, const struct request *r, int *err)
{
  CLEANUP_EXTENTS_FREE struct nbdkit_extents *e = NULL;
  size_t i;

  e = nbdkit_extents_new (r->offset, (uint64_t) next->get_size (next));
  if (e == NULL) {
    *err = errno;
    return -1;
  }
  if (next->extents (next, r->count, r->offset, r->flags, e, err) == -1)
    return -1;
  for (i = 0; i < nbdkit_extents_count (e); i++) {
    struct nbdkit_extent x = nbdkit_get_extent (e, i);

    if (nbdkit_add_extent (r->extents, x.offset, x.length, x.type) == -1) {
      *err = errno;
      return -1;
    }
  }
  return 0;
}

/* The request, once, on plugin context NEXT. */
static int
call_next (nbdkit_next *next, const struct request *r, int *err)
{
  switch (r->op) {
  case OP_PREAD:
    return next->pread (next, r->rbuf, r->count, r->offset, r->flags, err);
  case OP_PWRITE:
    return next->pwrite (next, r->wbuf, r->count, r->offset, r->flags, err);
  case OP_FLUSH:
    return next->flush (next, r->flags, err);
  case OP_TRIM:
    return next->trim (next, r->count, r->offset, r->flags, err);
  case OP_ZERO:
    return next->zero (next, r->count, r->offset, r->flags, err);
  case OP_EXTENTS:
    return extents_attempt (next, r, err);
  case OP_CACHE:
    return next->cache (next, r->count, r->offset, r->flags, err);
  case OP_OPEN:                 /* Not a call on a context. */
    break;
  }
  abort ();
}

/* Opening the plugin context at connect: an S3 endpoint that is
 * restarting refuses connections for a few seconds, so this is retried
 * like a request.  A plugin that fails without an errno (nbdkit_error
 * and NULL, as for an export that does not exist) says nothing
 * transient: EIO, not retried.
 */
static int
open_attempt (const struct request *r, int *err)
{
  errno = 0;
  if (r->open (r->context, r->readonly, r->exportname) == 0)
    return DONE;
  *err = errno;
  if (*err == 0) {
    *err = EIO;
    return PERMANENT;
  }
  return FAILED;
}

/* One attempt.  *GEN is set to the context generation it used, so that a
 * failure leads to at most one reopen of that context.  Returns DONE,
 * FAILED or PERMANENT (*err set), or TIMED_OUT when DEADLINE passed before
 * the attempt could start (*err untouched).
 */
static int
attempt (struct handle *h, const struct request *r, uint64_t deadline,
         unsigned *gen, int *err)
{
  int ret;

  if (r->op == OP_OPEN) {
    /* No plugin context yet to lock or check, and no other thread knows
     * the handle before open returns it.
     */
    *gen = 0;
    *err = 0;
    ret = open_attempt (r, err);
  }
  else {
    CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *locked =
      lock_until (h, false, deadline);
    nbdkit_next *next = h->next;

    if (locked == NULL)
      return TIMED_OUT;
    *gen = h->generation;
    *err = 0;
    if (is_write (r->op) && h->forced_readonly) {
      *err = EROFS;
      ret = FAILED;
    }
    else if (h->dead) {
      *err = ESHUTDOWN;
      ret = PERMANENT;
    }
    else if (next == NULL) {          /* The last reopen failed. */
      *err = ESHUTDOWN;
      ret = FAILED;
    }
    else if (h->generation > 0 &&
             (ret = check_reopened (h, next, r, err)) != DONE)
      ;
    else
      ret = call_next (next, r, err);
  }
  if (ret != DONE && *err == 0)
    *err = EIO;
  return ret;
}

/* Replace the plugin context by a fresh one, unless another request did
 * so since generation *GEN failed; *GEN becomes the new generation, so
 * that after a failed reopen the next one is not skipped.  Returns DONE,
 * FAILED (*err set: a failed reopen, to be tried again), PERMANENT (*err
 * set: the plugin refuses to open with a permanent errno, or the old
 * context could not be finalized) or TIMED_OUT (DEADLINE passed while
 * waiting for the lock: nothing done).  Closes the old
 * context first: a plugin whose connection state went bad may also hold
 * a resource (a session, a lock) that the new context needs.
 */
static int
reopen (struct handle *h, unsigned *gen, uint64_t deadline, int *err)
{
  /* The exclusive lock waits for every attempt in flight, of any request:
   * not past this request's deadline.
   */
  CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *locked =
    lock_until (h, true, deadline);
  nbdkit_next *old, *next;
  bool ro;

  if (locked == NULL)
    return TIMED_OUT;
  if (h->dead) {
    *err = ESHUTDOWN;
    return PERMANENT;
  }
  if (h->generation != *gen)
    return DONE;
  *gen = ++h->generation;
  h->reopens++;
  /* Read-only only once writes were refused (retry-readonly): a reopen
   * after transient errors (of reads, say) keeps the connection
   * writable.
   */
  ro = h->readonly || h->forced_readonly;
  nbdkit_debug ("retry-backoff: reopening the plugin context "
                "(%u consecutive failures, readonly=%d)",
                (unsigned) h->consecutive, ro);

  old = nbdkit_context_set_next (h->context, NULL);
  h->next = NULL;
  if (old) {
    /* A failed finalize can mean lost data (a flush at close failed):
     * as nbdkit's retry filter does, no reopen hides that; unlike it, the
     * connection stays closed, so that every later request (a flush
     * too) fails rather than report success over the loss.
     */
    if (old->finalize (old) == -1) {
      nbdkit_error ("retry-backoff: finalizing the old plugin context "
                    "failed: the connection is closed");
      nbdkit_next_context_close (old);
      h->dead = true;
      h->reopen_failures++;
      *err = ESHUTDOWN;
      return PERMANENT;
    }
    nbdkit_next_context_close (old);
  }

  errno = 0;
  next = nbdkit_next_context_open (nbdkit_context_get_backend (h->context),
                                   ro, h->exportname, false);
  if (next == NULL) {
    int e = errno;

    /* A permanent errno (EACCES: credentials revoked, ENOENT: the export
     * is gone) is the answer: no point in opening again.  No errno says
     * nothing: try again.
     */
    if (e && !errno_policy_is_transient (&policy, e)) {
      h->reopen_failures++;
      nbdkit_debug ("retry-backoff: reopening the plugin context failed "
                    "permanently");
      *err = e;
      return PERMANENT;
    }
    *err = e ? e : ESHUTDOWN;
    goto failed;
  }
  if (next->prepare (next) == -1) {
    *err = ESHUTDOWN;
    next->finalize (next);
    nbdkit_next_context_close (next);
    goto failed;
  }
  nbdkit_context_set_next (h->context, next);
  h->next = next;
  h->consecutive = 0;
  return DONE;

 failed:
  h->reopen_failures++;
  nbdkit_debug ("retry-backoff: reopening the plugin context failed");
  return FAILED;
}

/* retry-readonly: a write refused in a way that says the store no
 * longer takes writes.  EROFS says so plainly: read-only at once.  EPERM
 * and EACCES (S3's AccessDenied) may also come from one object or a
 * credential hiccup, so only when two write requests in a row fail so.
 * Such errnos are not retried, so each request counts once.
 */
#define REFUSALS_FOR_READONLY 2

static void
write_refused (struct handle *h, const struct request *r, int e)
{
  if (!retry_readonly || !is_write (r->op) || h->readonly ||
      h->forced_readonly)
    return;
  if (e != EROFS) {
    if (e != EPERM && e != EACCES) {
      h->refused_writes = 0;
      return;
    }
    if (++h->refused_writes < REFUSALS_FOR_READONLY)
      return;
  }
  /* Serve reads only from now on, stop sending the store writes that it
   * will refuse anyway, and reopen read-only if a reopen comes.
   */
  nbdkit_debug ("retry-backoff: %s: %s: connection continues read-only "
                "(retry-readonly)", op_names[r->op],
                e == EROFS ? "EROFS" : "writes refused");
  h->forced_readonly = true;
}

/* "pread offset=4096 count=512", "flush" or "open exportname=\"x\"", for
 * log lines.
 */
static const char *
describe (const struct request *r, char *buf, size_t len)
{
  if (r->op == OP_FLUSH)
    return "flush";
  if (r->op == OP_OPEN) {
    snprintf (buf, len, "open exportname=\"%s\"", r->exportname);
    return buf;
  }
  snprintf (buf, len, "%s offset=%" PRIu64 " count=%" PRIu32,
            op_names[r->op], r->offset, r->count);
  return buf;
}

static int
retrying (struct handle *h, const struct request *r, int *err)
{
  uint64_t start, deadline, now, delay;
  unsigned gen, failures;
  int e, ret;
  /* rb: room for an open's export name (NBD allows 4096 bytes). */
  char eb[32], db[32], rb[4200];

  /* The deadline counts from the start of the first attempt: an attempt
   * that failed slowly (a timeout) has used up time too.
   */
  start = now_ns ();
  deadline = start + retry_deadline;
  ret = attempt (h, r, deadline, &gen, err);
  if (ret == DONE) {
    if (h->consecutive)
      h->consecutive = 0;
    if (is_write (r->op) && h->refused_writes)
      h->refused_writes = 0;
    *err = 0;
    return 0;
  }
  if (ret == PERMANENT)
    return -1;
  if (ret == TIMED_OUT) {    /* Waited for a reopen past the deadline. */
    nbdkit_error ("retry-backoff: %s: waited past retry-deadline for "
                  "the plugin context", describe (r, rb, sizeof rb));
    *err = ETIMEDOUT;
    return -1;
  }
  e = *err;
  for (failures = 1; ; failures++) {
    if (!errno_policy_is_transient (&policy, e)) {
      write_refused (h, r, e);
      if (failures > 1)
        goto give_up;
      *err = e;
      return -1;
    }
    h->consecutive++;
    now = now_ns ();
    /* retries= counts attempts, the first included. */
    if (failures >= retries || now >= deadline) {
      if (failures == 1) {   /* Not retried at all (retries=1): no give-up. */
        *err = e;
        return -1;
      }
      goto give_up;
    }
    if (failures == 1)
      h->requests_retried++;

    delay = backoff_delay (&schedule, failures, backoff_random ());
    /* The last attempt is made at the deadline, not after it. */
    if (delay > deadline - now)
      delay = deadline - now;
    format_duration (delay, db, sizeof db);
    nbdkit_debug ("retry-backoff: %s failed: %s; retry %u of %u in %s",
                  describe (r, rb, sizeof rb), ename (e, eb, sizeof eb),
                  failures, retries - 1, db);
    if (nbdkit_nanosleep (delay / NS_PER_S, delay % NS_PER_S) == -1)
      goto give_up;          /* The server is shutting down. */
    h->retries++;

    /* An open has no context to reopen: its next attempt opens anew. */
    if (r->op == OP_OPEN)
      ret = 0;
    else if (reopen_after > 0 && h->consecutive >= reopen_after)
      ret = 1;
    else if ((ret = context_closed (h, deadline)) == -1)
      goto give_up;          /* Other requests held the context too long. */
    if (ret == 1) {
      ret = reopen (h, &gen, deadline, &e);
      if (ret == TIMED_OUT)
        goto give_up;        /* Other requests held the context too long. */
      if (ret == PERMANENT) {
        failures++;
        goto give_up;
      }
      if (ret == FAILED)
        continue;            /* A failed reopen is a failed attempt. */
      /* A reopen can be slow (a session to set up again). */
      if (now_ns () > deadline)
        goto give_up;
    }
    ret = attempt (h, r, deadline, &gen, &e);
    if (ret == TIMED_OUT)
      goto give_up;
    if (ret == PERMANENT) {
      failures++;
      goto give_up;
    }
    if (ret == DONE) {
      h->recoveries++;
      h->consecutive = 0;
      if (is_write (r->op) && h->refused_writes)
        h->refused_writes = 0;
      /* The first attempt set *err: a caller that reads it after a
       * success (against nbdkit's rules, but it happens) must not see a
       * failure.
       */
      *err = 0;
      return 0;
    }
  }

 give_up:
  h->give_ups++;
  nbdkit_debug ("retry-backoff: %s: giving up after %u attempts in %.3fs: "
                "%s", describe (r, rb, sizeof rb), failures,
                (double) (now_ns () - start) / NS_PER_S,
                ename (e, eb, sizeof eb));
  *err = e;
  return -1;
}

static void *
retry_backoff_open (nbdkit_next_open *next, nbdkit_context *context,
                    int readonly, const char *exportname, int is_tls)
{
  struct handle *h;
  pthread_rwlockattr_t attr;
  struct request r = { .op = OP_OPEN, .open = next, .context = context,
                       .readonly = readonly, .exportname = exportname };
  int err;

  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  h->context = context;
  h->readonly = readonly;
  h->size = -1;
  h->exportname = strdup (exportname);
  if (h->exportname == NULL) {
    nbdkit_error ("strdup: %m");
    free (h);
    return NULL;
  }
  /* glibc's rwlocks prefer readers by default: under a steady stream of
   * requests a reopen would wait forever.
   */
  pthread_rwlockattr_init (&attr);
  pthread_rwlockattr_setkind_np (&attr,
                                 PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init (&h->lock, &attr);
  pthread_rwlockattr_destroy (&attr);

  if (retrying (h, &r, &err) == -1) {
    pthread_rwlock_destroy (&h->lock);
    free (h->exportname);
    free (h);
    errno = err;
    return NULL;
  }
  return h;
}

static int
retry_backoff_pread (nbdkit_next *next, void *handle, void *buf,
                     uint32_t count, uint64_t offset, uint32_t flags,
                     int *err)
{
  struct request r = { .op = OP_PREAD, .rbuf = buf, .count = count,
                       .offset = offset, .flags = flags };
  return retrying (handle, &r, err);
}

static int
retry_backoff_pwrite (nbdkit_next *next, void *handle, const void *buf,
                      uint32_t count, uint64_t offset, uint32_t flags,
                      int *err)
{
  struct request r = { .op = OP_PWRITE, .wbuf = buf, .count = count,
                       .offset = offset, .flags = flags };
  return retrying (handle, &r, err);
}

static int
retry_backoff_flush (nbdkit_next *next, void *handle, uint32_t flags,
                     int *err)
{
  struct request r = { .op = OP_FLUSH, .flags = flags };
  return retrying (handle, &r, err);
}

static int
retry_backoff_trim (nbdkit_next *next, void *handle, uint32_t count,
                    uint64_t offset, uint32_t flags, int *err)
{
  struct request r = { .op = OP_TRIM, .count = count, .offset = offset,
                       .flags = flags };
  return retrying (handle, &r, err);
}

static int
retry_backoff_zero (nbdkit_next *next, void *handle, uint32_t count,
                    uint64_t offset, uint32_t flags, int *err)
{
  struct request r = { .op = OP_ZERO, .count = count, .offset = offset,
                       .flags = flags };
  return retrying (handle, &r, err);
}

static int
retry_backoff_extents (nbdkit_next *next, void *handle, uint32_t count,
                       uint64_t offset, uint32_t flags,
                       struct nbdkit_extents *extents, int *err)
{
  struct request r = { .op = OP_EXTENTS, .count = count, .offset = offset,
                       .flags = flags, .extents = extents };
  return retrying (handle, &r, err);
}

static int
retry_backoff_cache (nbdkit_next *next, void *handle, uint32_t count,
                     uint64_t offset, uint32_t flags, int *err)
{
  struct request r = { .op = OP_CACHE, .count = count, .offset = offset,
                       .flags = flags };
  return retrying (handle, &r, err);
}

static struct nbdkit_filter filter = {
  .name              = "retry-backoff",
  .longname          = "shardkit retry-backoff filter",
  .load              = retry_backoff_load,
  .config            = retry_backoff_config,
  .config_complete   = retry_backoff_config_complete,
  .config_help       = retry_backoff_config_help,
  .open              = retry_backoff_open,
  .prepare           = retry_backoff_prepare,
  .close             = retry_backoff_close,
  .get_size          = retry_backoff_get_size,
  .export_description = retry_backoff_export_description,
  .block_size        = retry_backoff_block_size,
  .can_write         = retry_backoff_can_write,
  .can_flush         = retry_backoff_can_flush,
  .is_rotational     = retry_backoff_is_rotational,
  .can_trim          = retry_backoff_can_trim,
  .can_zero          = retry_backoff_can_zero,
  .can_fast_zero     = retry_backoff_can_fast_zero,
  .can_extents       = retry_backoff_can_extents,
  .can_fua           = retry_backoff_can_fua,
  .can_multi_conn    = retry_backoff_can_multi_conn,
  .can_cache         = retry_backoff_can_cache,
  .pread             = retry_backoff_pread,
  .pwrite            = retry_backoff_pwrite,
  .flush             = retry_backoff_flush,
  .trim              = retry_backoff_trim,
  .zero              = retry_backoff_zero,
  .extents           = retry_backoff_extents,
  .cache             = retry_backoff_cache,
};

NBDKIT_REGISTER_FILTER (filter)
