/* shardkit s3-object: signed HTTP requests over a pool of curl handles.
 * GPL-3.0-or-later.
 *
 * A request borrows one easy handle from the pool (at most connections=
 * requests are in flight, others wait), and all handles share one curl
 * share handle, so DNS answers, TLS sessions and kept-alive connections
 * are reused by whichever handle runs next.
 *
 * Nothing secret is ever logged: debug lines carry the method, bucket,
 * key and status only, and CURLOPT_VERBOSE (which would print the
 * Authorization header) is never set.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include <nbdkit-plugin.h>

#include "backoff.h"
#include "cleanup.h"
#include "duration.h"
#include "s3-http.h"
#include "s3-xml.h"

#define ERROR_BODY_MAX (64 * 1024)

/* While a large body arrives, poll wakes curl only once this much of
 * it is queued on the socket (SO_RCVLOWAT), or all that is left of it.
 * Without it curl wakes for every few segments the server writes
 * (curl reads once per poll): perf put 17% of nbdkit's CPU per GiB
 * read in curl's poll, most of it sleeping and waking up again.  With
 * it nbdkit's context switches per GiB read into null: halved (about
 * 25,000 to 13,800, s3rver) and its CPU fell 5-10%.  Half of curl's
 * receive buffer (CURLOPT_BUFFERSIZE below), so one wake-up fills it.
 */
#define RCVLOWAT_MAX (256 * 1024)

/* What a pooled handle knows of the sockets curl opened for it (see
 * opensocket_cb).  SO_RCVLOWAT is raised only while exactly one is
 * open (then it is the one the transfer uses: handles do not share
 * connections) and always set back to 1 before the handle's next
 * request, whose answer may be a few hundred bytes of headers.
 */
struct handle_sockets {
  curl_socket_t fd;             /* the last socket opened, or -1 */
  unsigned nopen;               /* sockets open */
  int lowat;                    /* SO_RCVLOWAT set on fd (1: default) */
};

struct s3_client {
  char *scheme;                 /* "http" or "https" */
  char *host;                   /* Host header value (with :port) */
  char *bucket;
  char *region;
  bool virtual_style;
  unsigned timeout;
  unsigned retries;
  bool tls_verify;
  char *cainfo, *capath;
  struct s3_credentials creds;

  CURLSH *share;
  pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

  pthread_mutex_t pool_lock;
  pthread_cond_t pool_cond;
  CURL **idle;                  /* handles not in use */
  size_t nidle;
  size_t ncreated, max_handles;
};

void
s3_http_global_init (void)
{
  curl_global_init (CURL_GLOBAL_DEFAULT);
}

void
s3_http_global_cleanup (void)
{
  curl_global_cleanup ();
}

static void
share_lock (CURL *h, curl_lock_data data, curl_lock_access a, void *p)
{
  struct s3_client *c = p;
  pthread_mutex_lock (&c->share_locks[data]);
}

static void
share_unlock (CURL *h, curl_lock_data data, void *p)
{
  struct s3_client *c = p;
  pthread_mutex_unlock (&c->share_locks[data]);
}

const char *
s3_client_bucket (const struct s3_client *c)
{
  return c->bucket;
}

bool
s3_client_signs (const struct s3_client *c)
{
  return c->creds.access_key != NULL;
}

/* Split ENDPOINT into scheme and host[:port]. */
static int
parse_endpoint (struct s3_client *c, const char *endpoint)
{
  const char *p = strstr (endpoint, "://");
  const char *host;
  size_t len;

  if (p == NULL ||
      !((p - endpoint == 4 && strncasecmp (endpoint, "http", 4) == 0) ||
        (p - endpoint == 5 && strncasecmp (endpoint, "https", 5) == 0))) {
    nbdkit_error ("endpoint=%s: must start with http:// or https://",
                  endpoint);
    return -1;
  }
  c->scheme = strndup (endpoint, (size_t) (p - endpoint));
  host = p + 3;
  len = strcspn (host, "/?#");
  if (len == 0 || strcspn (host, "@") < len ||
      (host[len] != '\0' && strcmp (host + len, "/") != 0)) {
    nbdkit_error ("endpoint=%s: must be scheme://host[:port] without a "
                  "path or user", endpoint);
    return -1;
  }
  c->host = strndup (host, len);
  if (c->scheme == NULL || c->host == NULL) {
    nbdkit_error ("strndup: %m");
    return -1;
  }
  for (p = c->scheme; *p; ++p)
    c->scheme[p - c->scheme] = (char) (*p | 0x20);
  return 0;
}

struct s3_client *
s3_client_new (const struct s3_client_config *cfg,
               struct s3_credentials *creds)
{
  struct s3_client *c = calloc (1, sizeof *c);
  bool aws;
  size_t i;

  if (c == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  pthread_mutex_init (&c->pool_lock, NULL);
  pthread_cond_init (&c->pool_cond, NULL);
  for (i = 0; i < CURL_LOCK_DATA_LAST; ++i)
    pthread_mutex_init (&c->share_locks[i], NULL);
  c->creds = *creds;
  memset (creds, 0, sizeof *creds);
  c->bucket = strdup (cfg->bucket);
  c->region = strdup (cfg->region);
  c->timeout = cfg->timeout;
  c->retries = cfg->retries;
  c->tls_verify = cfg->tls_verify;
  c->cainfo = cfg->cainfo ? strdup (cfg->cainfo) : NULL;
  c->capath = cfg->capath ? strdup (cfg->capath) : NULL;
  c->max_handles = cfg->connections;
  c->idle = calloc (cfg->connections, sizeof *c->idle);
  if (c->bucket == NULL || c->region == NULL || c->idle == NULL) {
    nbdkit_error ("calloc: %m");
    goto err;
  }

  if (cfg->endpoint) {
    if (parse_endpoint (c, cfg->endpoint) == -1)
      goto err;
  }
  else {
    c->scheme = strdup ("https");
    if (asprintf (&c->host, "s3.%s.amazonaws.com", cfg->region) == -1) {
      c->host = NULL;
      nbdkit_error ("asprintf: %m");
      goto err;
    }
  }
  {
    /* AWS endpoints are virtual-hosted; other S3 servers are usually
     * addressed path-style (no wildcard DNS needed).
     */
    size_t hl = strcspn (c->host, ":");
    aws = hl >= 14 && strncmp (c->host + hl - 14, ".amazonaws.com", 14) == 0;
  }
  c->virtual_style = cfg->url_style == -1 ? aws : cfg->url_style == 1;
  if (c->virtual_style) {
    char *vhost;
    if (asprintf (&vhost, "%s.%s", c->bucket, c->host) == -1) {
      nbdkit_error ("asprintf: %m");
      goto err;
    }
    free (c->host);
    c->host = vhost;
  }

  c->share = curl_share_init ();
  if (c->share == NULL) {
    nbdkit_error ("curl_share_init failed");
    goto err;
  }
  curl_share_setopt (c->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt (c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt (c->share, CURLSHOPT_USERDATA, c);
  curl_share_setopt (c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt (c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  /* Not CURL_LOCK_DATA_CONNECT: libcurl does not support one connection
   * cache used by concurrent threads (valgrind saw use-after-free in it).
   * Each pooled handle keeps its own kept-alive connection instead.
   */
  nbdkit_debug ("s3: %s://%s, bucket %s, %s-style, region %s, "
                "%u connections", c->scheme, c->host, c->bucket,
                c->virtual_style ? "virtual" : "path", c->region,
                cfg->connections);
  return c;

 err:
  s3_client_free (c);
  return NULL;
}

void
s3_client_free (struct s3_client *c)
{
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < c->nidle; ++i) {
    struct handle_sockets *hs = NULL;
    curl_easy_getinfo (c->idle[i], CURLINFO_PRIVATE, (char **) &hs);
    /* (curl closes its sockets here, through closesocket_cb) */
    curl_easy_cleanup (c->idle[i]);
    free (hs);
  }
  free (c->idle);
  if (c->share)
    curl_share_cleanup (c->share);
  s3_credentials_free (&c->creds);
  free (c->scheme);
  free (c->host);
  free (c->bucket);
  free (c->region);
  free (c->cainfo);
  free (c->capath);
  pthread_mutex_destroy (&c->pool_lock);
  pthread_cond_destroy (&c->pool_cond);
  for (i = 0; i < CURL_LOCK_DATA_LAST; ++i)
    pthread_mutex_destroy (&c->share_locks[i]);
  free (c);
}

static void set_fixed_options (struct s3_client *c, CURL *h);
static curl_socket_t opensocket_cb (void *opaque, curlsocktype purpose,
                                    struct curl_sockaddr *a);
static int closesocket_cb (void *opaque, curl_socket_t fd);

static CURL *
get_handle (struct s3_client *c)
{
  CURL *h = NULL;

  pthread_mutex_lock (&c->pool_lock);
  while (c->nidle == 0 && c->ncreated >= c->max_handles)
    pthread_cond_wait (&c->pool_cond, &c->pool_lock);
  if (c->nidle > 0)
    h = c->idle[--c->nidle];
  else {
    h = curl_easy_init ();
    if (h == NULL) {
      pthread_mutex_unlock (&c->pool_lock);
      nbdkit_error ("curl_easy_init failed");
      return NULL;
    }
    c->ncreated++;
    pthread_mutex_unlock (&c->pool_lock);
    set_fixed_options (c, h);
    {
      /* Without it the handle works as well, only without SO_RCVLOWAT. */
      struct handle_sockets *hs = malloc (sizeof *hs);
      if (hs) {
        *hs = (struct handle_sockets) { .fd = CURL_SOCKET_BAD, .lowat = 1 };
        curl_easy_setopt (h, CURLOPT_PRIVATE, hs);
        curl_easy_setopt (h, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
        curl_easy_setopt (h, CURLOPT_OPENSOCKETDATA, hs);
        curl_easy_setopt (h, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
        curl_easy_setopt (h, CURLOPT_CLOSESOCKETDATA, hs);
      }
    }
    return h;
  }
  pthread_mutex_unlock (&c->pool_lock);
  return h;
}

static void
put_handle (struct s3_client *c, CURL *h)
{
  pthread_mutex_lock (&c->pool_lock);
  c->idle[c->nidle++] = h;
  pthread_cond_signal (&c->pool_cond);
  pthread_mutex_unlock (&c->pool_lock);
}

void
s3_response_free (struct s3_response *r)
{
  free (r->body);
  free (r->meta_sha256);
  free (r->meta_crc32c);
  memset (r, 0, sizeof *r);
}

/* What one attempt collects. */
struct transfer {
  CURL *h;
  struct handle_sockets *socks; /* NULL: SO_RCVLOWAT is left alone */
  const struct s3_request *req;
  struct s3_response *resp;
  long status;                  /* from the status line */
  bool overflow;                /* body longer than the cap */
  char *err;                    /* body of a non-2xx response */
  bool err_overflow;            /* ... longer than ERROR_BODY_MAX */
  size_t errlen;
  size_t bodycap;
};

static bool
is_2xx (long s)
{
  return s >= 200 && s < 300;
}

/* Once the body's length is known, wake curl only when RCVLOWAT_MAX
 * bytes (or the rest of the body) are there to read.  Only over
 * HTTP/1.x, where the bytes on the socket after the headers are at
 * least the body's (TLS adds record headers), so the low mark can
 * never ask for more than will arrive; the transfer's own timeout
 * still applies.  A failed setsockopt changes nothing but speed.
 */
static void
set_rcvlowat (struct transfer *t, uint64_t received)
{
  struct handle_sockets *hs = t->socks;
  const struct s3_response *r = t->resp;
  uint64_t left;
  int want;
  long version = 0;

  if (hs == NULL || hs->nopen != 1 || hs->fd == CURL_SOCKET_BAD ||
      r->content_length < 0 || received > (uint64_t) r->content_length)
    return;
  left = (uint64_t) r->content_length - received;
  want = left >= RCVLOWAT_MAX ? RCVLOWAT_MAX : left > 0 ? (int) left : 1;
  if (want == hs->lowat)
    return;
  if (hs->lowat == 1 &&
      (curl_easy_getinfo (t->h, CURLINFO_HTTP_VERSION, &version) != CURLE_OK ||
       (version != CURL_HTTP_VERSION_1_0 && version != CURL_HTTP_VERSION_1_1)))
    return;
  if (setsockopt (hs->fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want) == 0)
    hs->lowat = want;
}

/* Back to the default before the handle's next answer. */
static void
reset_rcvlowat (struct handle_sockets *hs)
{
  int one = 1;

  if (hs == NULL || hs->lowat == 1)
    return;
  if (hs->fd != CURL_SOCKET_BAD &&
      setsockopt (hs->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one) == -1) {
    /* Cannot happen on a socket that is open; if it does, curl must
     * not wait on it with a high low mark: close its connection.
     */
    nbdkit_debug ("s3: setsockopt SO_RCVLOWAT: %m");
    shutdown (hs->fd, SHUT_RDWR);
  }
  hs->lowat = 1;
}

static curl_socket_t
opensocket_cb (void *opaque, curlsocktype purpose, struct curl_sockaddr *a)
{
  struct handle_sockets *hs = opaque;
  curl_socket_t fd;

  fd = socket (a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  if (fd == -1)
    return CURL_SOCKET_BAD;
  hs->fd = fd;
  hs->nopen++;
  hs->lowat = 1;
  return fd;
}

static int
closesocket_cb (void *opaque, curl_socket_t fd)
{
  struct handle_sockets *hs = opaque;

  if (hs->fd == fd)
    hs->fd = CURL_SOCKET_BAD;
  hs->nopen--;
  return close (fd);
}

static size_t
write_cb (char *data, size_t size, size_t nmemb, void *opaque)
{
  struct transfer *t = opaque;
  struct s3_response *r = t->resp;
  size_t len = size * nmemb;

  if (!is_2xx (t->status)) {
    /* Error documents are small: an endless one is cut off (the
     * transfer fails), keeping its start for the message.
     */
    if (t->errlen + len > ERROR_BODY_MAX) {
      t->err_overflow = true;
      return 0;
    }
    if (len > 0) {
      char *p = realloc (t->err, t->errlen + len + 1);
      if (p == NULL)
        return 0;
      t->err = p;
      memcpy (t->err + t->errlen, data, len);
      t->errlen += len;
      t->err[t->errlen] = '\0';
    }
    return len;
  }
  if (t->req->buf) {
    if (r->len + len > t->req->cap) {
      t->overflow = true;
      return 0;
    }
    memcpy ((char *) t->req->buf + r->len, data, len);
    r->len += len;
    set_rcvlowat (t, r->len);
    return len;
  }
  if (r->len + len > (t->req->cap ? t->req->cap : S3_BODY_MAX)) {
    t->overflow = true;
    return 0;
  }
  if (r->len + len + 1 > t->bodycap) {
    size_t cap = t->bodycap ? t->bodycap : 4096;
    char *p;
    while (cap < r->len + len + 1)
      cap *= 2;
    p = realloc (r->body, cap);
    if (p == NULL)
      return 0;
    r->body = p;
    t->bodycap = cap;
  }
  memcpy (r->body + r->len, data, len);
  r->len += len;
  r->body[r->len] = '\0';
  set_rcvlowat (t, r->len);
  return len;
}

static bool
header_is (const char *line, size_t len, const char *name, const char **value,
           size_t *vlen)
{
  size_t n = strlen (name);

  if (len <= n || strncasecmp (line, name, n) != 0 || line[n] != ':')
    return false;
  line += n + 1;
  len -= n + 1;
  while (len && (*line == ' ' || *line == '\t'))
    line++, len--;
  while (len && (line[len-1] == '\r' || line[len-1] == '\n' ||
                 line[len-1] == ' '))
    len--;
  *value = line;
  *vlen = len;
  return true;
}

static size_t
header_cb (char *line, size_t size, size_t nmemb, void *opaque)
{
  struct transfer *t = opaque;
  struct s3_response *r = t->resp;
  size_t len = size * nmemb;
  const char *v;
  size_t vl;

  if (len >= 5 && strncmp (line, "HTTP/", 5) == 0) {
    /* A new response (after "100 Continue", say): forget the last. */
    const char *sp = memchr (line, ' ', len);
    t->status = sp ? strtol (sp + 1, NULL, 10) : 0;
    r->etag[0] = '\0';
    r->content_length = -1;
    r->have_range = false;
    free (r->meta_sha256);
    free (r->meta_crc32c);
    r->meta_sha256 = r->meta_crc32c = NULL;
  }
  else if (header_is (line, len, "etag", &v, &vl)) {
    if (vl >= 2 && v[0] == '"' && v[vl-1] == '"')
      v++, vl -= 2;
    if (vl < sizeof r->etag) {
      memcpy (r->etag, v, vl);
      r->etag[vl] = '\0';
    }
  }
  else if (header_is (line, len, "content-length", &v, &vl))
    r->content_length = strtoll (v, NULL, 10);
  else if (header_is (line, len, "content-range", &v, &vl)) {
    CLEANUP_FREE char *s = strndup (v, vl);
    if (s && sscanf (s, "bytes %" SCNu64 "-%" SCNu64 "/%" SCNu64,
                     &r->range_first, &r->range_last, &r->range_total) == 3)
      r->have_range = true;
  }
  else if (header_is (line, len, "x-amz-meta-shardkit-sha256", &v, &vl)) {
    free (r->meta_sha256);
    r->meta_sha256 = strndup (v, vl);
  }
  else if (header_is (line, len, "x-amz-meta-shardkit-crc32c", &v, &vl)) {
    free (r->meta_crc32c);
    r->meta_crc32c = strndup (v, vl);
  }
  return len;
}

static int
add_header (struct curl_slist **l, const char *name, const char *value)
{
  CLEANUP_FREE char *line = NULL;
  struct curl_slist *n;

  if (asprintf (&line, "%s: %s", name, value) == -1)
    return -1;
  n = curl_slist_append (*l, line);
  if (n == NULL)
    return -1;
  *l = n;
  return 0;
}

/* The path the server sees (decoded): /bucket/key or /key. */
static char *
request_path (const struct s3_client *c, const char *key)
{
  char *p;

  if (c->virtual_style)
    p = key ? (asprintf (&p, "/%s", key) == -1 ? NULL : p) : strdup ("/");
  else
    p = asprintf (&p, "/%s%s%s", c->bucket, key ? "/" : "",
                  key ? key : "") == -1 ? NULL : p;
  return p;
}

static char *
request_url (const struct s3_client *c, const char *path,
             const struct s3_request *req)
{
  CLEANUP_FREE char *epath = sigv4_uri_encode (path, true);
  char *url = NULL;
  size_t len = 0, i;
  FILE *fp;

  if (epath == NULL)
    return NULL;
  fp = open_memstream (&url, &len);
  if (fp == NULL)
    return NULL;
  fprintf (fp, "%s://%s%s", c->scheme, c->host, epath);
  for (i = 0; i < req->nparams; ++i) {
    CLEANUP_FREE char *n = sigv4_uri_encode (req->params[i].name, false);
    CLEANUP_FREE char *v = req->params[i].value ?
      sigv4_uri_encode (req->params[i].value, false) : NULL;
    fprintf (fp, "%c%s", i ? '&' : '?', n ? n : "");
    if (v)
      fprintf (fp, "=%s", v);
  }
  if (fclose (fp) != 0) {
    free (url);
    return NULL;
  }
  return url;
}

/* Build the signed header list for one attempt (the date changes). */
static int
build_headers (struct s3_client *c, const struct s3_request *req,
               const char *path, const char *payload_sha256,
               struct curl_slist **list)
{
  struct sigv4_pair hs[16 + 8];
  size_t nh = 0, i;
  char amz_date[17], range[64];
  struct sigv4_output out;
  struct sigv4_input in;
  time_t now = time (NULL);
  struct tm tm;

  if (req->nheaders > 16) {
    errno = EINVAL;
    return -1;
  }
  gmtime_r (&now, &tm);
  strftime (amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);
  hs[nh++] = (struct sigv4_pair) { "host", c->host };
  hs[nh++] = (struct sigv4_pair) { "x-amz-date", amz_date };
  hs[nh++] = (struct sigv4_pair) { "x-amz-content-sha256", payload_sha256 };
  if (c->creds.session_token)
    hs[nh++] = (struct sigv4_pair) { "x-amz-security-token",
                                     c->creds.session_token };
  if (req->ranged) {
    snprintf (range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64,
              req->range_first, req->range_last);
    hs[nh++] = (struct sigv4_pair) { "range", range };
  }
  for (i = 0; i < req->nheaders; ++i)
    hs[nh++] = req->headers[i];

  for (i = 0; i < nh; ++i)
    if (add_header (list, hs[i].name, hs[i].value) == -1)
      return -1;
  /* No "Expect: 100-continue" round trip before PUT bodies; no
   * form-urlencoded content type from curl.
   */
  if (add_header (list, "Expect", "") == -1)
    return -1;
  if (req->body &&
      add_header (list, "Content-Type", "application/octet-stream") == -1)
    return -1;

  if (c->creds.access_key == NULL)
    return 0;                   /* anonymous: unsigned */
  in = (struct sigv4_input) {
    .method = req->method, .path = path,
    .params = req->params, .nparams = req->nparams,
    .headers = hs, .nheaders = nh,
    .payload_sha256 = payload_sha256, .amz_date = amz_date,
    .region = c->region, .service = "s3",
    .access_key = c->creds.access_key, .secret_key = c->creds.secret_key,
  };
  if (sigv4_sign (&in, &out) == -1)
    return -1;
  i = add_header (list, "Authorization", out.authorization);
  sigv4_output_free (&out);
  return i == 0 ? 0 : -1;
}

/* Options that never change, set once when a handle is made.  Handles
 * are not reset between requests: curl_easy_reset would also drop the
 * handle's 512K receive buffer, and allocating it again per request is
 * a measurable part of a small ranged GET.
 */
static void
set_fixed_options (struct s3_client *c, CURL *h)
{
  curl_easy_setopt (h, CURLOPT_SHARE, c->share);
  curl_easy_setopt (h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt (h, CURLOPT_TCP_KEEPALIVE, 1L);
  /* The shared connection cache closes idle connections beyond this
   * (default 5): with more handles than that every burst would open new
   * connections.
   */
  curl_easy_setopt (h, CURLOPT_MAXCONNECTS, (long) c->max_handles + 4);
  /* Chunks are megabytes: fewer, larger reads from the socket, and
   * fewer, larger sends (curl copies a PUT body through its upload
   * buffer, 64K by default: 64 sends per 4 MiB chunk instead of 8).
   * curl allocates the upload buffer only for a handle's first upload.
   */
  curl_easy_setopt (h, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt (h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt (h, CURLOPT_CONNECTTIMEOUT,
                    (long) (c->timeout < 10 ? c->timeout : 10));
  curl_easy_setopt (h, CURLOPT_TIMEOUT, (long) c->timeout);
  curl_easy_setopt (h, CURLOPT_FOLLOWLOCATION, 0L);
  /* Send the path exactly as it was signed: curl would otherwise
   * squash "/./" and "/../" in a key, and the server would serve (or
   * refuse as badly signed) another object than the one asked for.
   */
  curl_easy_setopt (h, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt (h, CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L : 0L);
  curl_easy_setopt (h, CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L : 0L);
  if (c->cainfo)
    curl_easy_setopt (h, CURLOPT_CAINFO, c->cainfo);
  if (c->capath)
    curl_easy_setopt (h, CURLOPT_CAPATH, c->capath);
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt (h, CURLOPT_HEADERFUNCTION, header_cb);
}

/* Options of one request; every one that some request sets is set (or
 * cleared) here, so nothing leaks from the handle's previous request.
 */
static void
set_options (struct s3_client *c, CURL *h, const struct s3_request *req,
             const char *url, struct curl_slist *headers, struct transfer *t)
{
  curl_easy_setopt (h, CURLOPT_URL, url);
  curl_easy_setopt (h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, t);
  curl_easy_setopt (h, CURLOPT_HEADERDATA, t);

  /* Back to a plain GET first: clears POST fields, NOBODY and any
   * custom method of the last request.
   */
  curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, NULL);
  curl_easy_setopt (h, CURLOPT_NOBODY, 0L);
  curl_easy_setopt (h, CURLOPT_HTTPGET, 1L);
  if (strcmp (req->method, "GET") == 0)
    ;
  else if (strcmp (req->method, "HEAD") == 0)
    curl_easy_setopt (h, CURLOPT_NOBODY, 1L);
  else if (req->body || strcmp (req->method, "PUT") == 0 ||
           strcmp (req->method, "POST") == 0) {
    /* The body is sent straight from the caller's buffer. */
    curl_easy_setopt (h, CURLOPT_POSTFIELDSIZE_LARGE,
                      (curl_off_t) req->body_len);
    curl_easy_setopt (h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, req->method);
  }
  else
    curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, req->method);
}

/* Transient: worth another attempt. */
static bool
curl_transient (CURLcode rc)
{
  switch (rc) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return true;
  default:
    return false;
  }
}

static bool
status_transient (long s)
{
  return s == 500 || s == 502 || s == 503 || s == 504 || s == 408 ||
    s == 429;
}

static int
curl_errno (CURLcode rc)
{
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT: return ETIMEDOUT;
  case CURLE_COULDNT_CONNECT:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING: return ESHUTDOWN;
  default: return EIO;
  }
}

static int
status_errno (long s, const char *code)
{
  if (s == 401 || s == 403)
    return EACCES;
  if (s == 404)
    return ENOENT;
  if (s == 501)
    return ENOTSUP;
  if (s == 503 || s == 429)
    return EAGAIN;
  if (s == 504 || s == 408)
    return ETIMEDOUT;
  if (s >= 500)
    return EIO;
  (void) code;
  return EIO;
}

/* Delays before attempt N (1, 2, ...): exponential from 200 ms to 3 s,
 * with jitter in [d/2, d], so that many clients backing off do not
 * retry in step.
 */
static const struct backoff s3_backoff = {
  .first = 200 * NS_PER_MS, .max = 3 * NS_PER_S,
  .jitter = BACKOFF_EQUAL_JITTER,
};

/* Sleep before attempt N.  Returns -1 if nbdkit is shutting down (the
 * sleep ended early).
 */
static bool serving;

void
s3_http_serving (void)
{
  __atomic_store_n (&serving, true, __ATOMIC_RELEASE);
}

static int
backoff (unsigned n)
{
  uint64_t d = backoff_delay (&s3_backoff, n, backoff_random ());
  struct timespec ts = { .tv_sec = d / NS_PER_S, .tv_nsec = d % NS_PER_S };

  /* nbdkit_nanosleep (which ends early at shutdown) aborts on an
   * assertion in nbdkit 1.32 when called before the server runs (from
   * .get_ready, checking the volume at start-up): sleep plainly there.
   */
  if (__atomic_load_n (&serving, __ATOMIC_ACQUIRE))
    return nbdkit_nanosleep (ts.tv_sec, ts.tv_nsec);
  while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
    ;
  return 0;
}

/* Success by the letter of the operation (see s3-http.h). */
static bool
status_is_success (const struct s3_request *req, long s)
{
  const char *m = req->method;

  if (strcmp (m, "GET") == 0)
    return s == 200 || (req->ranged && s == 206);
  if (strcmp (m, "DELETE") == 0)
    return s == 204 || s == 200;
  return s == 200;              /* HEAD, PUT, POST */
}

/* A non-success status that the caller accepts as an answer. */
static bool
status_is_answer (const struct s3_request *req, long s, const char *code)
{
  bool get = strcmp (req->method, "GET") == 0;
  bool head = strcmp (req->method, "HEAD") == 0;

  if (s == 404 && (req->answers & S3_ANSWER_NOT_FOUND))
    return head || (get && code && strcmp (code, "NoSuchKey") == 0);
  if (s == 416 && (req->answers & S3_ANSWER_BAD_RANGE))
    return get && req->ranged;
  if (s == 412 && (req->answers & S3_ANSWER_PRECONDITION))
    return true;
  return false;
}

int
s3_http_request (struct s3_client *c, const struct s3_request *req,
                 struct s3_response *resp)
{
  CLEANUP_FREE char *path = request_path (c, req->key);
  CLEANUP_FREE char *url = NULL;
  char sha[65];
  const char *payload_sha = req->body_sha256;
  const char *what = req->key ? req->key : "";
  unsigned attempt;
  CURL *h;
  int err = EIO;

  memset (resp, 0, sizeof *resp);
  resp->content_length = -1;
  if (path == NULL || (url = request_url (c, path, req)) == NULL) {
    nbdkit_error ("s3: out of memory");
    errno = ENOMEM;
    return -1;
  }
  if (payload_sha == NULL) {
    if (sigv4_sha256_hex (req->body ? req->body : "", req->body_len, sha) == -1) {
      nbdkit_error ("s3: SHA-256 failed");
      return -1;
    }
    payload_sha = sha;
  }

  h = get_handle (c);
  if (h == NULL) {
    errno = ENOMEM;
    return -1;
  }
  for (attempt = 0; ; ++attempt) {
    CLEANUP_CURL_SLIST_FREE struct curl_slist *headers = NULL;
    struct transfer t = { .h = h, .req = req, .resp = resp };
    CURLcode rc;
    bool last = attempt >= c->retries;
    CLEANUP_FREE char *code = NULL, *message = NULL;

    if (attempt > 0 && backoff (attempt) == -1) {
      nbdkit_error ("s3: %s %s/%s: nbdkit is shutting down: not retried",
                    req->method, c->bucket, what);
      err = ESHUTDOWN;
      break;
    }
    free (resp->body);
    resp->body = NULL;
    resp->len = 0;
    if (build_headers (c, req, path, payload_sha, &headers) == -1) {
      nbdkit_error ("s3: %s %s/%s: cannot sign the request: %m",
                    req->method, c->bucket, what);
      put_handle (c, h);
      return -1;
    }
    set_options (c, h, req, url, headers, &t);
    curl_easy_getinfo (h, CURLINFO_PRIVATE, (char **) &t.socks);
    rc = curl_easy_perform (h);
    reset_rcvlowat (t.socks);
    curl_easy_getinfo (h, CURLINFO_RESPONSE_CODE, &resp->status);
    if (t.err)
      s3_xml_parse_error (t.err, t.errlen, &code, &message);
    free (t.err);

    if (rc == CURLE_WRITE_ERROR && t.overflow) {
      nbdkit_error ("s3: %s %s/%s: the server sent more than the %zu bytes "
                    "expected (transfer aborted)", req->method, c->bucket,
                    what, req->cap ? req->cap : (size_t) S3_BODY_MAX);
      err = EIO;
      break;
    }
    if (rc == CURLE_WRITE_ERROR && t.err_overflow) {
      nbdkit_error ("s3: %s %s/%s: HTTP %ld with an error body over %d "
                    "bytes (transfer aborted)%s%s", req->method, c->bucket,
                    what, resp->status, ERROR_BODY_MAX,
                    code ? ": " : "", code ? code : "");
      err = EIO;
      break;
    }
    if (rc != CURLE_OK) {
      err = curl_errno (rc);
      if (curl_transient (rc) && !last) {
        nbdkit_debug ("s3: %s %s/%s: %s, retrying (attempt %u)",
                      req->method, c->bucket, what, curl_easy_strerror (rc),
                      attempt + 2);
        continue;
      }
      nbdkit_error ("s3: %s %s/%s: %s%s", req->method, c->bucket, what,
                    curl_easy_strerror (rc),
                    attempt ? " (after retries)" : "");
      break;
    }
    nbdkit_debug ("s3: %s %s/%s -> %ld", req->method, c->bucket, what,
                  resp->status);
    if (status_is_success (req, resp->status)) {
      put_handle (c, h);
      return 0;
    }
    if (status_is_answer (req, resp->status, code)) {
      if (code)
        snprintf (resp->code, sizeof resp->code, "%s", code);
      put_handle (c, h);
      return 0;
    }
    if (is_2xx (resp->status)) {
      /* A 2xx that the operation does not define (a 206 to a whole GET,
       * a 201 or 202 to a PUT): not proof that it happened.
       */
      nbdkit_error ("s3: %s %s/%s: unexpected HTTP %ld: taken as a failure",
                    req->method, c->bucket, what, resp->status);
      err = EIO;
      break;
    }
    err = status_errno (resp->status, code);
    if (status_transient (resp->status) && !last) {
      nbdkit_debug ("s3: %s %s/%s: HTTP %ld %s, retrying (attempt %u)",
                    req->method, c->bucket, what, resp->status,
                    code ? code : "", attempt + 2);
      continue;
    }
    nbdkit_error ("s3: %s %s/%s: %s (HTTP %ld)%s%s%s", req->method,
                  c->bucket, what, code ? code : "error", resp->status,
                  message && *message ? ": " : "",
                  message && *message ? message : "",
                  attempt ? " (after retries)" : "");
    break;
  }
  put_handle (c, h);
  errno = err;
  return -1;
}
