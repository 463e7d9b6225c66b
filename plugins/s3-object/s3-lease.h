/* shardkit s3-object: the lease that lets one server at a time write a
 * volume (PREFIX/NAME.lease beside PREFIX/NAME.meta).
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_S3_LEASE_H
#define SHARDKIT_S3_LEASE_H

#include <stddef.h>

#include "s3-http.h"

#define S3_LEASE_TIME_DEFAULT 30        /* seconds */
#define S3_LEASE_TIME_MIN 3
#define S3_LEASE_TIME_MAX 86400
#define S3_LEASE_WAIT_MAX 86400

/* The lease= parameters of the plugin. */
struct s3_lease_config {
  unsigned lease_secs;          /* lease-time= */
  unsigned wait_secs;           /* lease-wait= */
};

struct s3_lease;

/* Key of the lease object of volume NAME, malloc'd (NULL on ENOMEM). */
extern char *s3_lease_key (const char *prefix, const char *name);

/* Take the lease object KEY of volume VOLUME_NAME for LEASE_SECS
 * seconds and keep renewing it from a thread of its own.  A lease held
 * by another server, not released and not past its end, is waited for
 * up to WAIT_SECS (0: not at all).  Returns NULL after one nbdkit_error
 * (naming the holder and when its lease ends if it is held: errno
 * EBUSY).  Call from the process that serves (threads do not survive
 * fork).
 */
extern struct s3_lease *s3_lease_acquire (struct s3_client *c,
                                          const char *key,
                                          const char *volume_name,
                                          unsigned lease_secs,
                                          unsigned wait_secs);

/* s3_lease_acquire of PREFIX/NAME.lease for volume NAME with CFG
 * (NULL: the defaults).
 */
extern struct s3_lease *s3_lease_acquire_volume (struct s3_client *c,
                                                 const char *prefix,
                                                 const char *name,
                                                 const struct s3_lease_config *cfg);

/* Who holds the lease of volume NAME, without taking it: 1 if a server
 * holds it (not released, not past its end; described in BUF), 0 if
 * nobody does, -1 after nbdkit_error.  For the volume tool.
 */
extern int s3_lease_holder (struct s3_client *c, const char *prefix,
                            const char *name, char *buf, size_t len);

/* Before anything that changes the volume: 0 if the lease is certainly
 * still ours (its last renewal was sent less than lease-time minus a
 * margin ago), else -1 with errno EIO, logged at most once in a while.
 * A lease taken over by another server is lost for good; one that
 * merely could not be renewed for a while works again once a renewal
 * gets through.
 */
extern int s3_lease_check (struct s3_lease *l);

/* Stop renewing, mark the lease object released (a conditional PUT, so
 * a lease taken over meanwhile is left alone) and free L.  NULL-safe.
 * Call only when nothing can write any more.
 */
extern void s3_lease_release (struct s3_lease *l);

#endif
