/* shardkit retry-backoff filter: which errnos are worth a retry.
 * GPL-3.0-or-later.
 */
#ifndef RETRY_BACKOFF_ERRNO_POLICY_H
#define RETRY_BACKOFF_ERRNO_POLICY_H

#include <stdbool.h>

/* Errnos up to this value can be marked transient (Linux's go to 133). */
#define ERRNO_POLICY_MAX 256

struct errno_policy {
  bool transient[ERRNO_POLICY_MAX];
};

/* The default set: EIO, ETIMEDOUT, EAGAIN/EWOULDBLOCK, ESHUTDOWN,
 * ECONNRESET, ECONNREFUSED, ENOTCONN, EPIPE.
 */
extern void errno_policy_init (struct errno_policy *p);

/* Add a comma-separated list of errno names ("ENOMEM,EBUSY") or numbers.
 * Errnos that mean a permanent failure (errno_is_permanent) are refused.
 * Returns 0, or -1 with a reason in WHY (LEN bytes).
 */
extern int errno_policy_add_list (struct errno_policy *p, const char *list,
                                  char *why, size_t len);

extern bool errno_policy_is_transient (const struct errno_policy *p, int err);

/* ENOSPC, EROFS, EINVAL, EPERM, EACCES, EFBIG, ENOTSUP (= EOPNOTSUPP):
 * retrying cannot help, and a retry of ENOSPC or EROFS only delays an
 * answer the client (or a file system on the disk) must see at once.
 */
extern bool errno_is_permanent (int err);

/* "EIO" for EIO; NULL for an errno we have no name for. */
extern const char *errno_name (int err);

#endif
