/* shardkit s3-object: one writer per volume, by a lease object.
 * GPL-3.0-or-later.
 *
 * S3 has no locks.  A server that opens volume NAME read-write first
 * creates PREFIX/NAME.lease with a PUT and "If-None-Match: *", a small
 * key=value text saying who holds it (host, pid, a random 128-bit id)
 * and until when (wall clock, UTC).  A thread renews it every third of
 * the lease time with a PUT and "If-Match: <its last ETag>", so that a
 * renewal fails (412) once anybody else has written the object.  Another
 * server may take the lease over, again with If-Match on the ETag it
 * read, only once the lease is past its end by its own clock or marked
 * released.  A clean close marks it released with a conditional PUT (not
 * a DELETE: Ceph ignores If-Match on DELETE).
 *
 * Fencing: the holder keeps a local deadline, the monotonic time when
 * its last successful renewal was sent plus the lease time minus a
 * margin, and s3_lease_check refuses writes past it.  So it stops
 * writing at least the margin before anybody else may take over, as
 * long as the clocks of the two hosts do not drift apart by more than
 * that.  A write already sent may still land later (see the man page).
 *
 * Ceph RGW 16.2 honours If-Match only with the ETag unquoted; HTTP and
 * AWS use the quoted form.  We send it unquoted and switch to the quoted
 * form if a 412 comes back while the object has not changed.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "s3-lease.h"

#define NS_PER_S UINT64_C(1000000000)
#define NS_PER_MS UINT64_C(1000000)
#define LEASE_BODY_MAX 4096
#define LOG_EVERY_NS (10 * NS_PER_S)    /* refusals logged at most this often */

struct s3_lease {
  struct s3_client *c;
  char *key;
  char *volume;
  unsigned lease_secs;
  uint64_t interval_ns;         /* between renewals */
  uint64_t margin_ns;           /* deadline this much before the lease ends */

  char host[256];
  long pid;
  char id[33];                  /* 128 random bits in hex */

  /* Only the renewal thread touches these once it runs (and release,
   * after joining it).
   */
  char etag[80];                /* ETag of the object as we last wrote it */
  uint64_t seq;                 /* bodies written so far */
  bool quoted;                  /* send If-Match with the ETag quoted */
  bool form_switched;           /* tried the other form already */

  _Atomic uint64_t deadline;    /* monotonic ns: writes refused from then */
  atomic_bool lost;             /* taken over: refused until restart */
  atomic_bool refusing;         /* s3_lease_check is failing */
  _Atomic uint64_t last_log;    /* monotonic ns of the last refusal logged */

  pthread_t thread;
  bool thread_started;
  pthread_mutex_t lock;
  pthread_cond_t cond;          /* on CLOCK_MONOTONIC */
  bool stop;                    /* under lock */
};

/* A lease object as read back. */
struct lease_info {
  char host[256];
  long pid;
  char id[33];
  uint64_t seq;
  int64_t until_ms;             /* wall clock, ms since the epoch */
  bool released;
  char etag[80];
};

static uint64_t
mono_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * NS_PER_S + (uint64_t) ts.tv_nsec;
}

static int64_t
wall_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2026-11-25T11:45:47.123Z" */
static void
format_iso (int64_t ms, char *buf, size_t n)
{
  time_t s = (time_t) (ms / 1000);
  struct tm tm;
  char t[32];

  if (gmtime_r (&s, &tm) == NULL ||
      strftime (t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
    snprintf (buf, n, "@%" PRId64 "ms", ms);
    return;
  }
  snprintf (buf, n, "%s.%03dZ", t, (int) (ms % 1000));
}

char *
s3_lease_key (const char *prefix, const char *name)
{
  char *k;
  return asprintf (&k, "%s%s.lease", prefix, name) == -1 ? NULL : k;
}

/* The body of the lease object.  until-ms is what other servers go by;
 * the rest is for people (and for us to recognise our own writes).
 */
static char *
format_body (const struct s3_lease *l, uint64_t seq, int64_t now_ms,
             int64_t until_ms, bool released)
{
  char written[40], until[40];
  char *body;

  format_iso (now_ms, written, sizeof written);
  format_iso (until_ms, until, sizeof until);
  if (asprintf (&body,
                "# shardkit volume lease: the server that may write the "
                "volume; do not edit\n"
                "format=shardkit-lease\n"
                "version=1\n"
                "volume=%s\n"
                "host=%s\n"
                "pid=%ld\n"
                "id=%s\n"
                "seq=%" PRIu64 "\n"
                "lease-time=%u\n"
                "written=%s\n"
                "until=%s\n"
                "until-ms=%" PRId64 "\n"
                "released=%d\n",
                l->volume, l->host, l->pid, l->id, seq, l->lease_secs,
                written, until, until_ms, released ? 1 : 0) == -1)
    return NULL;
  return body;
}

static void
copy_field (char *dst, size_t n, const char *v, size_t vlen)
{
  size_t i;

  if (vlen >= n)
    vlen = n - 1;
  for (i = 0; i < vlen; ++i)
    dst[i] = (v[i] >= 0x20 && v[i] < 0x7f) ? v[i] : '?';
  dst[vlen] = '\0';
}

/* Parse BODY into *INFO.  Returns 0, or -1 with *WHY set. */
static int
parse_body (const char *body, size_t len, struct lease_info *info,
            const char **why)
{
  const char *p = body, *end = body + len;
  bool have_format = false, have_id = false, have_until = false,
    have_released = false;

  memset (info, 0, sizeof *info);
  strcpy (info->host, "?");
  info->pid = -1;
  while (p < end) {
    const char *nl = memchr (p, '\n', end - p);
    const char *eol = nl ? nl : end;
    const char *eq = memchr (p, '=', eol - p);

    if (eq && *p != '#') {
      size_t klen = eq - p, vlen = eol - eq - 1;
      const char *v = eq + 1;
      char num[32];

      copy_field (num, sizeof num, v, vlen);
#define KEY_IS(s) (klen == strlen (s) && memcmp (p, s, klen) == 0)
      if (KEY_IS ("format"))
        have_format = vlen == 14 && memcmp (v, "shardkit-lease", 14) == 0;
      else if (KEY_IS ("host"))
        copy_field (info->host, sizeof info->host, v, vlen);
      else if (KEY_IS ("pid"))
        info->pid = strtol (num, NULL, 10);
      else if (KEY_IS ("id")) {
        copy_field (info->id, sizeof info->id, v, vlen);
        have_id = vlen > 0;
      }
      else if (KEY_IS ("seq"))
        info->seq = strtoull (num, NULL, 10);
      else if (KEY_IS ("until-ms")) {
        char *e;
        errno = 0;
        info->until_ms = strtoll (num, &e, 10);
        have_until = errno == 0 && e != num && *e == '\0';
      }
      else if (KEY_IS ("released")) {
        info->released = vlen == 1 && v[0] == '1';
        have_released = vlen == 1 && (v[0] == '0' || v[0] == '1');
      }
#undef KEY_IS
    }
    p = eol + 1;
  }
  if (!have_format)
    *why = "no format=shardkit-lease";
  else if (!have_id)
    *why = "no id=";
  else if (!have_until)
    *why = "no valid until-ms=";
  else if (!have_released)
    *why = "no valid released=";
  else
    return 0;
  return -1;
}

/* Read the lease object.  Returns 1 with *INFO filled, 0 if there is
 * none, -1 after nbdkit_error.
 */
static int
read_lease (struct s3_lease *l, struct lease_info *info)
{
  struct s3_request req = {
    .method = "GET", .key = l->key, .answers = S3_ANSWER_NOT_FOUND,
    .cap = LEASE_BODY_MAX,
  };
  struct s3_response resp;
  const char *why;

  if (s3_http_request (l->c, &req, &resp) == -1) {
    s3_response_free (&resp);
    return -1;
  }
  if (resp.status == 404) {
    s3_response_free (&resp);
    return 0;
  }
  if (parse_body (resp.body ? resp.body : "", resp.len, info, &why) == -1) {
    nbdkit_error ("s3: %s/%s: not a shardkit lease (%s): if no server "
                  "writes volume '%s', delete this object",
                  s3_client_bucket (l->c), l->key, why, l->volume);
    s3_response_free (&resp);
    errno = EIO;
    return -1;
  }
  if (resp.etag[0] == '\0') {
    nbdkit_error ("s3: %s/%s: the server sent no ETag for the lease",
                  s3_client_bucket (l->c), l->key);
    s3_response_free (&resp);
    errno = EIO;
    return -1;
  }
  snprintf (info->etag, sizeof info->etag, "%s", resp.etag);
  s3_response_free (&resp);
  return 1;
}

/* PUT BODY as the lease object: with "If-None-Match: *" if IF_MATCH is
 * NULL (create), else "If-Match: IF_MATCH".  Returns 1 (done, the new
 * ETag in ETAG), 0 (412: the condition failed), -1 after nbdkit_error.
 */
static int
put_lease (struct s3_lease *l, const char *if_match, const char *body,
           char *etag, size_t etag_size)
{
  char quoted[96];
  struct sigv4_pair h[1];
  struct s3_request req = {
    .method = "PUT", .key = l->key, .body = body, .body_len = strlen (body),
    .headers = h, .nheaders = 1, .answers = S3_ANSWER_PRECONDITION,
  };
  struct s3_response resp;

  if (if_match == NULL)
    h[0] = (struct sigv4_pair) { "if-none-match", "*" };
  else if (l->quoted) {
    snprintf (quoted, sizeof quoted, "\"%s\"", if_match);
    h[0] = (struct sigv4_pair) { "if-match", quoted };
  }
  else
    h[0] = (struct sigv4_pair) { "if-match", if_match };

  if (s3_http_request (l->c, &req, &resp) == -1) {
    s3_response_free (&resp);
    return -1;
  }
  if (resp.status == 412) {
    s3_response_free (&resp);
    return 0;
  }
  if (resp.etag[0] == '\0') {
    /* Without it the lease cannot be renewed. */
    nbdkit_error ("s3: PUT %s/%s: the server sent no ETag for the lease",
                  s3_client_bucket (l->c), l->key);
    s3_response_free (&resp);
    errno = EIO;
    return -1;
  }
  snprintf (etag, etag_size, "%s", resp.etag);
  s3_response_free (&resp);
  return 1;
}

/* What a 412 to our conditional PUT (with If-Match: EXPECTED) meant,
 * found by reading the object back.
 */
enum after_412 {
  OURS,          /* the object holds our id: one of our PUTs landed
                  * (a retry of a PUT whose answer was lost) */
  UNCHANGED,     /* still EXPECTED: the server refused our If-Match form */
  TAKEN,         /* somebody else wrote it, or it was deleted */
};

static int
after_412 (struct s3_lease *l, const char *expected, struct lease_info *info,
           enum after_412 *what)
{
  int r = read_lease (l, info);

  if (r == -1)
    return -1;
  if (r == 0)
    *what = TAKEN;
  else if (strcmp (info->id, l->id) == 0)
    *what = OURS;
  else if (expected && strcmp (info->etag, expected) == 0)
    *what = UNCHANGED;
  else
    *what = TAKEN;
  return 0;
}

/* The If-Match form seems refused: try the other one, once. */
static bool
switch_form (struct s3_lease *l)
{
  if (l->form_switched) {
    nbdkit_error ("s3: %s/%s: the server answers 412 to If-Match with the "
                  "object's own ETag, quoted or not: it cannot hold a lease",
                  s3_client_bucket (l->c), l->key);
    errno = EIO;
    return false;
  }
  l->form_switched = true;
  l->quoted = !l->quoted;
  nbdkit_debug ("s3: lease %s: If-Match with the ETag %s refused, trying %s",
                l->key, l->quoted ? "unquoted" : "quoted",
                l->quoted ? "quoted" : "unquoted");
  return true;
}

/* Extend the deadline to SENT + lease - margin (never move it back). */
static void
set_deadline (struct s3_lease *l, uint64_t sent)
{
  uint64_t d = sent + l->lease_secs * NS_PER_S - l->margin_ns;
  uint64_t old = atomic_load (&l->deadline);

  while (d > old && !atomic_compare_exchange_weak (&l->deadline, &old, d))
    ;
}

/* One renewal.  Returns 1 renewed, 0 lost for good, -1 failed (try
 * again soon).
 */
static int
renew (struct s3_lease *l)
{
  unsigned tries;

  /* A few passes at most: each one follows a 412 that was ours after
   * all (a retried PUT that had landed) or tries the other If-Match form.
   */
  for (tries = 0; tries < 4; ++tries) {
    CLEANUP_FREE char *body = NULL;
    struct lease_info info;
    enum after_412 what;
    uint64_t seq = l->seq + 1, sent = mono_ns ();
    int64_t now = wall_ms ();
    char etag[80];
    int r;

    body = format_body (l, seq, now, now + l->lease_secs * INT64_C(1000),
                        false);
    if (body == NULL) {
      nbdkit_error ("asprintf: %m");
      return -1;
    }
    r = put_lease (l, l->etag, body, etag, sizeof etag);
    if (r == -1)
      return -1;
    if (r == 1) {
      l->seq = seq;
      memcpy (l->etag, etag, sizeof etag);
      set_deadline (l, sent);
      return 1;
    }
    if (after_412 (l, l->etag, &info, &what) == -1)
      return -1;
    switch (what) {
    case OURS:
      /* An earlier attempt landed.  Only this very body extends the
       * deadline (an older one ends sooner): else renew again.
       */
      memcpy (l->etag, info.etag, sizeof l->etag);
      if (info.seq == seq) {
        l->seq = seq;
        set_deadline (l, sent);
        return 1;
      }
      l->seq = info.seq > l->seq ? info.seq : l->seq;
      continue;
    case UNCHANGED:
      if (!switch_form (l))
        return 0;
      continue;
    case TAKEN:
      {
        char until[40];
        format_iso (info.until_ms, until, sizeof until);
        if (info.id[0])
          nbdkit_error ("volume '%s': lease lost: taken over by host %s, "
                        "pid %ld, id %s (until %s): every write fails "
                        "until this server restarts", l->volume, info.host,
                        info.pid, info.id, until);
        else
          nbdkit_error ("volume '%s': lease lost: the lease object %s was "
                        "deleted: every write fails until this server "
                        "restarts", l->volume, l->key);
      }
      return 0;
    }
  }
  nbdkit_error ("s3: %s/%s: renewal of the lease keeps failing with 412",
                s3_client_bucket (l->c), l->key);
  return -1;
}

static void *
renew_thread (void *arg)
{
  struct s3_lease *l = arg;
  uint64_t next = mono_ns () + l->interval_ns;

  for (;;) {
    int r;

    pthread_mutex_lock (&l->lock);
    while (!l->stop && mono_ns () < next) {
      struct timespec ts = {
        .tv_sec = next / NS_PER_S, .tv_nsec = next % NS_PER_S,
      };
      pthread_cond_timedwait (&l->cond, &l->lock, &ts);
    }
    if (l->stop) {
      pthread_mutex_unlock (&l->lock);
      break;
    }
    pthread_mutex_unlock (&l->lock);

    next = mono_ns ();
    r = renew (l);
    if (r == 1)
      next += l->interval_ns;
    else if (r == 0) {
      atomic_store (&l->lost, true);
      break;
    }
    else
      /* Transient trouble (already logged): try again soon, the
       * deadline is still ahead or writes are paused meanwhile.
       */
      next += l->interval_ns < NS_PER_S ? l->interval_ns : NS_PER_S;
  }
  return NULL;
}

static void
free_lease (struct s3_lease *l)
{
  pthread_mutex_destroy (&l->lock);
  pthread_cond_destroy (&l->cond);
  free (l->key);
  free (l->volume);
  free (l);
}

static int
random_id (char *hex)
{
  unsigned char b[16];
  size_t got = 0;
  int i;

  while (got < sizeof b) {
    ssize_t r = getrandom (b + got, sizeof b - got, 0);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    got += r;
  }
  for (i = 0; i < 16; ++i)
    sprintf (hex + 2*i, "%02x", b[i]);
  return 0;
}

static struct s3_lease *
new_lease (struct s3_client *c, const char *key, const char *volume_name,
           unsigned lease_secs)
{
  struct s3_lease *l;
  pthread_condattr_t ca;
  char host[256];

  l = calloc (1, sizeof *l);
  if (l == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  pthread_mutex_init (&l->lock, NULL);
  pthread_condattr_init (&ca);
  pthread_condattr_setclock (&ca, CLOCK_MONOTONIC);
  pthread_cond_init (&l->cond, &ca);
  pthread_condattr_destroy (&ca);
  l->c = c;
  l->lease_secs = lease_secs;
  /* Renew three times per lease; stop writing a third of the lease
   * (at least 1 s) before it ends, which covers the clock drift between
   * hosts and the time a renewal takes to arrive.
   */
  l->interval_ns = lease_secs * NS_PER_S / 3;
  l->margin_ns = lease_secs * NS_PER_S / 3;
  if (l->margin_ns < NS_PER_S)
    l->margin_ns = NS_PER_S;
  l->pid = (long) getpid ();
  if (gethostname (host, sizeof host) == -1)
    strcpy (host, "unknown");
  host[sizeof host - 1] = '\0';
  copy_field (l->host, sizeof l->host, host, strlen (host));
  l->key = strdup (key);
  l->volume = strdup (volume_name);
  if (l->key == NULL || l->volume == NULL) {
    nbdkit_error ("strdup: %m");
    free_lease (l);
    return NULL;
  }
  if (random_id (l->id) == -1) {
    nbdkit_error ("getrandom: %m");
    free_lease (l);
    return NULL;
  }
  return l;
}

struct s3_lease *
s3_lease_acquire (struct s3_client *c, const char *key,
                  const char *volume_name, unsigned lease_secs,
                  unsigned wait_secs)
{
  struct s3_lease *l;
  uint64_t wait_end = mono_ns () + wait_secs * NS_PER_S;
  bool said_waiting = false;
  unsigned spins = 0;
  int err;

  l = new_lease (c, key, volume_name, lease_secs);
  if (l == NULL)
    return NULL;

  for (;;) {
    CLEANUP_FREE char *body = NULL;
    struct lease_info info;
    enum after_412 what;
    uint64_t sent = mono_ns ();
    int64_t now = wall_ms ();
    char etag[80], until[40];
    int r;

    /* Each pass either waits a second or follows a change of the object
     * by somebody else; a store that keeps changing it faster than we
     * can read it is not one we can hold a lease in.
     */
    if (++spins > 50) {
      nbdkit_error ("s3: %s/%s: the lease object keeps changing: giving up",
                    s3_client_bucket (c), key);
      errno = EIO;
      goto err;
    }

    /* Create it if there is none. */
    body = format_body (l, ++l->seq, now, now + lease_secs * INT64_C(1000),
                        false);
    if (body == NULL) {
      nbdkit_error ("asprintf: %m");
      goto err;
    }
    r = put_lease (l, NULL, body, etag, sizeof etag);
    if (r == -1)
      goto err;
    if (r == 1)
      goto got;
    r = read_lease (l, &info);
    if (r == -1)
      goto err;
    if (r == 0)
      continue;                 /* gone meanwhile: create it again */
    if (strcmp (info.id, l->id) == 0 && info.seq == l->seq) {
      /* Our create landed, and its answer was lost and retried. */
      memcpy (etag, info.etag, sizeof etag);
      goto got;
    }

    if (info.released || info.until_ms < wall_ms ()) {
      /* Free to take over, as long as nobody else does meanwhile. */
      nbdkit_debug ("s3: lease %s: %s by host %s, pid %ld, id %s: taking "
                    "it over", key, info.released ? "released" : "expired",
                    info.host, info.pid, info.id);
      free (body);
      sent = mono_ns ();
      now = wall_ms ();
      body = format_body (l, ++l->seq, now, now + lease_secs * INT64_C(1000),
                          false);
      if (body == NULL) {
        nbdkit_error ("asprintf: %m");
        goto err;
      }
      r = put_lease (l, info.etag, body, etag, sizeof etag);
      if (r == -1)
        goto err;
      if (r == 1)
        goto got;
      if (after_412 (l, info.etag, &info, &what) == -1)
        goto err;
      if (what == OURS && info.seq == l->seq) {
        memcpy (etag, info.etag, sizeof etag);
        goto got;
      }
      if (what == UNCHANGED && !switch_form (l))
        goto err;
      /* Somebody else won the race: look at their lease. */
      continue;
    }

    /* Held by another server. */
    format_iso (info.until_ms, until, sizeof until);
    if (mono_ns () < wait_end) {
      if (!said_waiting)
        nbdkit_debug ("s3: volume '%s': waiting up to %u s for the lease "
                      "held by host %s, pid %ld, id %s until %s",
                      volume_name, wait_secs, info.host, info.pid, info.id,
                      until);
      said_waiting = true;
      spins = 0;
      /* Ends early at nbdkit shutdown, or when the client is gone. */
      if (nbdkit_nanosleep (1, 0) == -1) {
        nbdkit_error ("volume '%s': the wait for its lease was interrupted "
                      "(nbdkit shutting down or the client gone)",
                      volume_name);
        errno = ESHUTDOWN;
        goto err;
      }
      continue;
    }
    nbdkit_error ("volume '%s' in bucket %s is being written by another "
                  "server: host %s, pid %ld, lease id %s holds %s until %s "
                  "(%.1f s from now)%s", volume_name, s3_client_bucket (c),
                  info.host, info.pid, info.id, key, until,
                  (info.until_ms - wall_ms ()) / 1000.0,
                  wait_secs ? "" : "; lease-wait=SECONDS waits for it, "
                  "-r serves the volume read-only");
    errno = EBUSY;
    goto err;

  got:
    memcpy (l->etag, etag, sizeof l->etag);
    set_deadline (l, sent);
    break;
  }

  err = pthread_create (&l->thread, NULL, renew_thread, l);
  if (err) {
    errno = err;
    nbdkit_error ("pthread_create: %m");
    /* Let the next server have it at once. */
    l->thread_started = false;
    s3_lease_release (l);
    errno = err;
    return NULL;
  }
  l->thread_started = true;
  nbdkit_debug ("s3: volume '%s': lease %s taken (id %s, %u s, renewed "
                "every %.1f s)", volume_name, key, l->id, lease_secs,
                l->interval_ns / 1e9);
  return l;

 err:
  err = errno;
  free_lease (l);
  errno = err;
  return NULL;
}

int
s3_lease_holder (struct s3_client *c, const char *prefix, const char *name,
                 char *buf, size_t len)
{
  CLEANUP_FREE char *key = s3_lease_key (prefix, name);
  struct s3_lease l = { .c = c, .key = key, .volume = (char *) name };
  struct lease_info info;
  char until[40];
  int r;

  if (key == NULL) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  r = read_lease (&l, &info);
  if (r <= 0)
    return r;
  if (info.released || info.until_ms < wall_ms ())
    return 0;
  format_iso (info.until_ms, until, sizeof until);
  snprintf (buf, len, "leased for writing by host %s, pid %ld, lease id %s, "
            "until %s", info.host, info.pid, info.id, until);
  return 1;
}

struct s3_lease *
s3_lease_acquire_volume (struct s3_client *c, const char *prefix,
                         const char *name, const struct s3_lease_config *cfg)
{
  CLEANUP_FREE char *key = s3_lease_key (prefix, name);

  if (key == NULL) {
    nbdkit_error ("asprintf: %m");
    return NULL;
  }
  return s3_lease_acquire (c, key, name,
                           cfg ? cfg->lease_secs : S3_LEASE_TIME_DEFAULT,
                           cfg ? cfg->wait_secs : 0);
}

int
s3_lease_check (struct s3_lease *l)
{
  uint64_t now = mono_ns (), last;
  bool lost = atomic_load (&l->lost);

  if (!lost && now < atomic_load (&l->deadline)) {
    if (atomic_load (&l->refusing) && atomic_exchange (&l->refusing, false))
      nbdkit_debug ("volume '%s': lease renewed: writes resume", l->volume);
    return 0;
  }

  /* One line now and then, not one per request. */
  last = atomic_load (&l->last_log);
  if ((!atomic_load (&l->refusing) || now - last >= LOG_EVERY_NS) &&
      atomic_compare_exchange_strong (&l->last_log, &last, now)) {
    if (lost)
      nbdkit_error ("volume '%s': writes refused: its lease was taken over "
                    "by another server", l->volume);
    else
      nbdkit_error ("volume '%s': writes refused: its lease (%s) has not "
                    "been renewed for %.1f s, another server may take it "
                    "over", l->volume, l->key,
                    (now - (atomic_load (&l->deadline) -
                            l->lease_secs * NS_PER_S + l->margin_ns)) / 1e9);
  }
  atomic_store (&l->refusing, true);
  errno = EIO;
  return -1;
}

void
s3_lease_release (struct s3_lease *l)
{
  int attempt;

  if (l == NULL)
    return;
  if (l->thread_started) {
    pthread_mutex_lock (&l->lock);
    l->stop = true;
    pthread_cond_signal (&l->cond);
    pthread_mutex_unlock (&l->lock);
    pthread_join (l->thread, NULL);
  }

  /* Mark it released, If-Match on our ETag: a lease taken over meanwhile
   * is somebody else's now and stays untouched.
   */
  for (attempt = 0; !atomic_load (&l->lost) && attempt < 3; ++attempt) {
    CLEANUP_FREE char *body = NULL;
    struct lease_info info;
    enum after_412 what;
    int64_t now = wall_ms ();
    char etag[80];
    int r;

    body = format_body (l, ++l->seq, now, now, true);
    if (body == NULL) {
      nbdkit_error ("asprintf: %m");
      break;
    }
    r = put_lease (l, l->etag, body, etag, sizeof etag);
    if (r == 1) {
      nbdkit_debug ("s3: volume '%s': lease %s released", l->volume, l->key);
      break;
    }
    if (r == -1 || after_412 (l, l->etag, &info, &what) == -1)
      break;                    /* it ends by itself */
    if (what == TAKEN ||
        (what == OURS && info.seq == l->seq && info.released))
      break;
    if (what == OURS)
      memcpy (l->etag, info.etag, sizeof l->etag);
    else if (!switch_form (l))
      break;
  }
  free_lease (l);
}
