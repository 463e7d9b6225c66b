/* shardkit s3-object: records of what a location lacks, in buckets.
 * GPL-3.0-or-later.  See s3-missing.h.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "crc32c.h"
#include "le-bytes.h"
#include "s3-digest.h"
#include "s3-missing.h"
#include "s3-volume.h"

#define MAGIC "shardkit-mbitmap"
#define HEADER 84
#define FLAG_ALL 1u

/* The record on one holder about one location: what it holds in memory
 * is what the object says once the last PUT is acknowledged.
 */
struct record {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  uint8_t *bits;                /* nr_chunks bits */
  bool all;
  int64_t started;              /* 0: no record yet */
  /* Group commit: appends are numbered; DONE is the last one a PUT
   * made durable, FAILED the last one a failed PUT held.
   */
  uint64_t wanted, done, failed;
  bool writing;
  /* The object was read (or found absent) in this process: rewriting
   * it whole from memory keeps what it said.  Not for a holder that did
   * not answer at open: its first append reads the object first.
   */
  bool loaded;
};

struct s3_missing {
  char *name;
  char uuid[40];
  unsigned nloc;
  uint64_t nr_chunks;
  size_t bitmap_bytes;
  bool readonly;
  struct s3_client *clients[MISSING_MAX_LOCATIONS];
  const char *prefixes[MISSING_MAX_LOCATIONS];
  int (*may_change) (void *opaque, unsigned holder);
  void *may_change_opaque;
  struct record *rec;           /* [holder * nloc + loc] */
};

char *
s3_missing_key (const char *prefix, const char *name, unsigned loc)
{
  char *key;

  if (asprintf (&key, "%s%s.missing.%u", prefix, name, loc) == -1)
    return NULL;
  return key;
}

bool
s3_missing_suffix (const char *rest)
{
  const char *p;

  if (strncmp (rest, "missing.", 8) != 0 || rest[8] == '\0')
    return false;
  for (p = rest + 8; *p; ++p)
    if (*p < '0' || *p > '9')
      return false;
  return true;
}

static struct record *
record (struct s3_missing *m, unsigned holder, unsigned loc)
{
  return &m->rec[holder * m->nloc + loc];
}

struct s3_missing *
s3_missing_new (const char *name, const char *uuid, unsigned nloc,
                uint64_t nr_chunks, struct s3_client *const *clients,
                const char *const *prefixes, bool readonly)
{
  struct s3_missing *m;
  unsigned i;

  m = calloc (1, sizeof *m);
  if (m == NULL || (m->name = strdup (name)) == NULL ||
      (m->rec = calloc ((size_t) nloc * nloc, sizeof *m->rec)) == NULL) {
    nbdkit_error ("calloc: %m");
    if (m)
      free (m->name);
    free (m);
    return NULL;
  }
  snprintf (m->uuid, sizeof m->uuid, "%s", uuid);
  m->nloc = nloc;
  m->nr_chunks = nr_chunks;
  m->bitmap_bytes = (nr_chunks + 7) / 8;
  m->readonly = readonly;
  for (i = 0; i < nloc; ++i) {
    m->clients[i] = clients[i];
    m->prefixes[i] = prefixes[i];
  }
  for (i = 0; i < nloc * nloc; ++i) {
    pthread_mutex_init (&m->rec[i].lock, NULL);
    pthread_cond_init (&m->rec[i].cond, NULL);
  }
  return m;
}

void
s3_missing_set_guard (struct s3_missing *m,
                      int (*may_change) (void *opaque, unsigned holder),
                      void *opaque)
{
  m->may_change = may_change;
  m->may_change_opaque = opaque;
}

void
s3_missing_free (struct s3_missing *m)
{
  unsigned i;

  if (m == NULL)
    return;
  for (i = 0; i < m->nloc * m->nloc; ++i) {
    pthread_mutex_destroy (&m->rec[i].lock);
    pthread_cond_destroy (&m->rec[i].cond);
    free (m->rec[i].bits);
  }
  free (m->rec);
  free (m->name);
  free (m);
}

static int
ensure_bits (struct s3_missing *m, struct record *r)
{
  if (r->bits == NULL && (r->bits = calloc (1, m->bitmap_bytes + 1)) == NULL) {
    nbdkit_error ("calloc: %m");
    return -1;
  }
  return 0;
}





static uint32_t
body_crc (const uint8_t *body, size_t len)
{
  uint32_t crc = crc32c (0, body, 80);
  return crc32c (crc, body + HEADER, len - HEADER);
}

static void
found_nothing (void *arg, uint64_t n)
{
}

/* Load the record on HOLDER of what LOC lacks into its struct record
 * and tell FOUND: 1 if there is an object (damaged included), 0 if
 * not, -1 after nbdkit_error.
 */
static int
load_record (struct s3_missing *m, unsigned holder, unsigned loc,
             void (*found) (void *arg, uint64_t n), void *arg)
{
  struct record *r = record (m, holder, loc);
  CLEANUP_FREE char *key = s3_missing_key (m->prefixes[holder], m->name, loc);
  CLEANUP_FREE char *text = NULL;
  const uint8_t *body;
  size_t len, want = HEADER + m->bitmap_bytes;
  uint64_t n;
  int got;

  if (key == NULL) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  /* Room for a longer object than ours, read as damage below (one
   * much longer is an error of the GET).
   */
  got = s3_get_small (m->clients[holder], key, want + 64 * 1024, &text, &len);
  if (got == -1)
    return -1;
  if (got == 0) {
    r->loaded = true;
    return 0;                   /* no record: lacks nothing */
  }
  body = (const uint8_t *) text;
  /* Only a sound record of another volume or place is refused; damage
   * (a bad length or digest, whatever the fields say) is below.
   */
  if (len == want && memcmp (body, MAGIC, 16) == 0 &&
      get_le32 (body + 80) == body_crc (body, len) &&
      (memcmp (body + 16, m->uuid, 36) != 0 ||
       get_le32 (body + 52) != loc || get_le32 (body + 56) != holder)) {
    nbdkit_error ("%s: bucket %s: %s is the record of another volume or "
                  "another place (uuid %.36s, location %" PRIu32 " on %"
                  PRIu32 "), not of this set's location %u on %u",
                  m->name, s3_client_bucket (m->clients[holder]), key,
                  (const char *) body + 16, get_le32 (body + 52),
                  get_le32 (body + 56), loc, holder);
    errno = EINVAL;
    return -1;
  }
  pthread_mutex_lock (&r->lock);
  if (ensure_bits (m, r) == -1) {
    pthread_mutex_unlock (&r->lock);
    return -1;
  }
  if (len != want || memcmp (body, MAGIC, 16) != 0 ||
      get_le64 (body + 60) != m->nr_chunks ||
      get_le32 (body + 80) != body_crc (body, len)) {
    nbdkit_debug ("%s: bucket %s: %s is damaged (%zu bytes, %zu expected, "
                  "or a bad digest): location %u is caught up in full",
                  m->name, s3_client_bucket (m->clients[holder]), key, len,
                  want, loc);
    r->all = true;
    r->started = time (NULL);
    r->loaded = true;
    pthread_mutex_unlock (&r->lock);
    found (arg, MISSING_ALL);
    return 1;
  }
  r->started = (int64_t) get_le64 (body + 68);
  if (get_le32 (body + 76) & FLAG_ALL)
    r->all = true;
  for (n = 0; n < m->nr_chunks; ++n)
    if (body[HEADER + n / 8] & (1u << (n % 8)))
      r->bits[n / 8] |= (uint8_t) (1u << (n % 8));
  r->loaded = true;
  pthread_mutex_unlock (&r->lock);
  if (r->all)
    found (arg, MISSING_ALL);
  for (n = 0; n < m->nr_chunks; ++n)
    if (body[HEADER + n / 8] & (1u << (n % 8)))
      found (arg, n);
  return 1;
}

static int
load (void *opaque, unsigned holder, unsigned loc,
      void (*found) (void *arg, uint64_t n), void *arg)
{
  return load_record (opaque, holder, loc, found, arg) == -1 ? -1 : 0;
}

int
s3_missing_read (struct s3_missing *m, unsigned holder, unsigned loc,
                 void (*found) (void *arg, uint64_t n), void *arg,
                 struct s3_missing_info *info)
{
  struct record *r = record (m, holder, loc);
  uint64_t n;
  int got;

  memset (info, 0, sizeof *info);
  got = load_record (m, holder, loc, found ? found : found_nothing, arg);
  if (got != 1)
    return got;
  pthread_mutex_lock (&r->lock);
  info->all = r->all;
  info->started = r->started;
  for (n = 0; r->bits && n < m->nr_chunks; ++n)
    info->chunks += (r->bits[n / 8] >> (n % 8)) & 1;
  pthread_mutex_unlock (&r->lock);
  return 1;
}

/* The object for R now, with R's lock held. */
static uint8_t *
encode (struct s3_missing *m, const struct record *r, unsigned holder,
        unsigned loc, size_t *len)
{
  size_t total = HEADER + m->bitmap_bytes;
  uint8_t *body = calloc (1, total);

  if (body == NULL)
    return NULL;
  memcpy (body, MAGIC, 16);
  memcpy (body + 16, m->uuid, 36);
  put_le32 (body + 52, loc);
  put_le32 (body + 56, holder);
  put_le64 (body + 60, m->nr_chunks);
  put_le64 (body + 68, (uint64_t) r->started);
  put_le32 (body + 76, r->all ? FLAG_ALL : 0);
  memcpy (body + HEADER, r->bits, m->bitmap_bytes);
  put_le32 (body + 80, body_crc (body, total));
  *len = total;
  return body;
}

static int
put_record (struct s3_missing *m, unsigned holder, unsigned loc,
            const uint8_t *body, size_t len)
{
  CLEANUP_FREE char *key = s3_missing_key (m->prefixes[holder], m->name, loc);
  char md5b64[32];
  struct sigv4_pair h[] = { { "content-md5", md5b64 } };
  struct s3_request req = {
    .method = "PUT", .key = key, .body = body, .body_len = len,
    .headers = h, .nheaders = 1,
  };
  struct s3_response resp;
  int r;

  if (key == NULL) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  if (m->may_change && m->may_change (m->may_change_opaque, holder) == -1)
    return -1;
  if (s3_content_md5 (body, len, md5b64) == -1) {
    nbdkit_error ("s3: %s: MD5: %m", key);
    return -1;
  }
  r = s3_http_request (m->clients[holder], &req, &resp);
  s3_response_free (&resp);
  return r;
}

static int
append (void *opaque, unsigned holder, unsigned loc, const uint64_t *ns,
        size_t count)
{
  struct s3_missing *m = opaque;
  struct record *r = record (m, holder, loc);
  uint64_t mine;
  size_t i;
  int ret = 0;

  if (m->readonly) {
    errno = EROFS;
    nbdkit_error ("%s: read-only: cannot record what location %u lacks",
                  m->name, loc);
    return -1;
  }
  /* A record not read yet (its holder did not answer at open): what
   * the object says must stay in it.
   */
  if (!__atomic_load_n (&r->loaded, __ATOMIC_ACQUIRE) &&
      load_record (m, holder, loc, found_nothing, NULL) == -1)
    return -1;
  pthread_mutex_lock (&r->lock);
  if (ensure_bits (m, r) == -1) {
    pthread_mutex_unlock (&r->lock);
    return -1;
  }
  if (r->started == 0)
    r->started = time (NULL);
  for (i = 0; i < count; ++i) {
    if (ns[i] == MISSING_ALL)
      r->all = true;
    else if (ns[i] < m->nr_chunks)
      r->bits[ns[i] / 8] |= (uint8_t) (1u << (ns[i] % 8));
  }
  mine = ++r->wanted;
  while (r->done < mine && r->failed < mine) {
    CLEANUP_FREE uint8_t *body = NULL;
    uint64_t upto;
    size_t len;
    int err;

    if (r->writing) {
      pthread_cond_wait (&r->cond, &r->lock);
      continue;
    }
    /* This thread PUTs every append made so far, its own included. */
    r->writing = true;
    upto = r->wanted;
    body = encode (m, r, holder, loc, &len);
    pthread_mutex_unlock (&r->lock);
    if (body == NULL) {
      nbdkit_error ("calloc: %m");
      err = -1;
    }
    else
      err = put_record (m, holder, loc, body, len);
    pthread_mutex_lock (&r->lock);
    r->writing = false;
    if (err == 0)
      r->done = upto;
    else
      r->failed = upto;
    pthread_cond_broadcast (&r->cond);
  }
  if (r->done < mine)
    ret = -1;
  pthread_mutex_unlock (&r->lock);
  if (ret == -1 && errno == 0)
    errno = EIO;
  return ret;
}

static int
clear (void *opaque, unsigned holder, unsigned loc)
{
  struct s3_missing *m = opaque;
  struct record *r = record (m, holder, loc);
  CLEANUP_FREE char *key = s3_missing_key (m->prefixes[holder], m->name, loc);
  struct s3_request req = { .method = "DELETE", .key = key };
  struct s3_response resp;
  int ret;

  if (key == NULL) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  if (m->readonly) {
    errno = EROFS;
    nbdkit_error ("%s: read-only: cannot empty the record", m->name);
    return -1;
  }
  if (m->may_change && m->may_change (m->may_change_opaque, holder) == -1)
    return -1;
  /* No append runs for this record now (missing-set.h).  The memory
   * copy is emptied only once the object is gone: if the DELETE fails,
   * the next rewrite keeps what the object says.
   */
  ret = s3_http_request (m->clients[holder], &req, &resp);
  s3_response_free (&resp);
  if (ret == -1)
    return -1;
  pthread_mutex_lock (&r->lock);
  if (r->bits)
    memset (r->bits, 0, m->bitmap_bytes);
  r->all = false;
  r->started = 0;
  pthread_mutex_unlock (&r->lock);
  return 0;
}

const struct missing_log_ops s3_missing_ops = {
  .load = load,
  .append = append,
  .clear = clear,
};
