/* shardkit retry-backoff filter: which errnos are worth a retry.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errno-policy.h"

struct errno_entry {
  const char *name;
  int err;
};

/* Names accepted by retry-on= and printed in debug lines.  Not every errno:
 * the ones a plugin or the network may plausibly return.
 */
static const struct errno_entry names[] = {
#define E(e) { #e, e }
  E (EPERM), E (ENOENT), E (EINTR), E (EIO), E (ENXIO), E (EBADF),
  E (EAGAIN), E (ENOMEM), E (EACCES), E (EFAULT), E (EBUSY), E (EEXIST),
  E (ENODEV), E (EINVAL), E (ENFILE), E (EMFILE), E (ETXTBSY), E (EFBIG),
  E (ENOSPC), E (ESPIPE), E (EROFS), E (EMLINK), E (EPIPE), E (ERANGE),
  E (EDEADLK), E (ENOLCK), E (ENOSYS), E (ENODATA), E (ETIME), E (ENOLINK),
  E (EPROTO), E (EBADMSG), E (EOVERFLOW), E (EILSEQ), E (ENOTSUP),
  E (ENOBUFS), E (ENOTCONN), E (ESHUTDOWN), E (ETIMEDOUT),
  E (ECONNREFUSED), E (ECONNRESET), E (ECONNABORTED), E (ENETDOWN),
  E (ENETUNREACH), E (ENETRESET), E (EHOSTDOWN), E (EHOSTUNREACH),
  E (EALREADY), E (EINPROGRESS), E (ESTALE), E (EREMOTEIO), E (EDQUOT),
  E (ECANCELED), E (EADDRINUSE), E (EADDRNOTAVAIL),
  /* Aliases, accepted on input; the first name above wins on output. */
  E (EWOULDBLOCK), E (EOPNOTSUPP), E (EDEADLOCK),
#undef E
};

static const int default_transient[] = {
  EIO, ETIMEDOUT, EAGAIN, EWOULDBLOCK, ESHUTDOWN, ECONNRESET,
  ECONNREFUSED, ENOTCONN, EPIPE,
};

static const int permanent[] = {
  ENOSPC, EROFS, EINVAL, EPERM, EACCES, EFBIG, ENOTSUP, EOPNOTSUPP,
};

bool
errno_is_permanent (int err)
{
  size_t i;

  for (i = 0; i < sizeof permanent / sizeof permanent[0]; i++)
    if (permanent[i] == err)
      return true;
  return false;
}

const char *
errno_name (int err)
{
  size_t i;

  for (i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].err == err)
      return names[i].name;
  return NULL;
}

void
errno_policy_init (struct errno_policy *p)
{
  size_t i;

  memset (p, 0, sizeof *p);
  for (i = 0; i < sizeof default_transient / sizeof default_transient[0]; i++)
    p->transient[default_transient[i]] = true;
}

static int
lookup (const char *word, size_t len, int *err)
{
  size_t i;
  char *end;
  long n;

  for (i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen (names[i].name) == len &&
        strncasecmp (names[i].name, word, len) == 0) {
      *err = names[i].err;
      return 0;
    }
  /* A number, for errnos not in the table. */
  errno = 0;
  n = strtol (word, &end, 10);
  if (errno == 0 && end == word + len && len > 0 && n > 0 &&
      n < ERRNO_POLICY_MAX) {
    *err = (int) n;
    return 0;
  }
  return -1;
}

int
errno_policy_add_list (struct errno_policy *p, const char *list,
                       char *why, size_t len)
{
  const char *s = list;

  if (*s == '\0') {
    snprintf (why, len, "empty list (expected names such as ENOMEM,EBUSY)");
    return -1;
  }
  while (*s) {
    size_t n = strcspn (s, ",");
    int err;

    while (n > 0 && (*s == ' ' || *s == '\t')) {
      s++;
      n--;
    }
    while (n > 0 && (s[n-1] == ' ' || s[n-1] == '\t'))
      n--;
    if (n == 0) {
      snprintf (why, len, "empty item in the list");
      return -1;
    }
    if (lookup (s, n, &err) == -1) {
      snprintf (why, len, "'%.*s' is not an errno name (e.g. ENOMEM)",
                (int) n, s);
      return -1;
    }
    if (errno_is_permanent (err)) {
      snprintf (why, len, "%.*s is a permanent error and is never retried",
                (int) n, s);
      return -1;
    }
    p->transient[err] = true;
    s += strcspn (s, ",");
    if (*s == ',') {
      s++;
      if (*s == '\0') {
        snprintf (why, len, "empty item in the list");
        return -1;
      }
    }
  }
  return 0;
}

bool
errno_policy_is_transient (const struct errno_policy *p, int err)
{
  if (err <= 0 || err >= ERRNO_POLICY_MAX || errno_is_permanent (err))
    return false;
  return p->transient[err];
}
