/* shardkit s3-object: the record of what a location of a set lacks, as
 * one object per (holder, lacking location) in the holder's bucket
 * (missing-set.h, struct missing_log_ops).
 * GPL-3.0-or-later.
 *
 * S3 has no append, so the record is a bitmap rewritten whole:
 * PREFIX/NAME.missing.L in holder H's bucket says which chunks L lacks,
 * little-endian:
 *
 *   0   16  magic "shardkit-mbitmap" (no NUL)
 *   16  36  the volume's uuid (as in NAME.meta)
 *   52   4  L, the location that lacks the chunks
 *   56   4  H, the location whose bucket holds the object
 *   60   8  the number of chunks of the volume (bits that follow)
 *   68   8  the Unix time (seconds) the record was started at
 *   76   4  flags: bit 0, L lacks every chunk (a full resync)
 *   80   4  CRC32C of bytes 0..79 and of the bitmap
 *   84      the bitmap: bit (n % 8) of byte n / 8 set if L lacks chunk n
 *
 * A volume of 100 GiB in 4 MiB chunks has a bitmap of 3200 bytes.  An
 * append sets its bits in memory and PUTs the whole object; appends
 * from several threads share one PUT (group commit): an append returns
 * once a PUT that holds its bits was acknowledged (S3 acknowledges only
 * what it stored; the PUT is signed with its body's SHA-256, so the
 * server checks the bytes it got).  The compaction DELETEs the object.
 *
 * Reading: no object is an empty record.  An object of the wrong
 * length, or whose CRC does not match, is damage, and reads as "lacks
 * every chunk" (slow, never wrong); an object of another volume (uuid)
 * or another place is refused.
 */
#ifndef SHARDKIT_S3_MISSING_H
#define SHARDKIT_S3_MISSING_H

#include <stdbool.h>
#include <stdint.h>

#include "missing-set.h"
#include "s3-http.h"

struct s3_missing;

/* The records of volume NAME (uuid UUID, NR_CHUNKS chunks), of a set
 * of NLOC locations.  Holder H's records are objects under PREFIX[H]
 * in the bucket of CLIENTS[H] (both borrowed); a location that is not
 * a bucket has CLIENTS[H] NULL and is never asked.  READONLY: appends
 * fail with EROFS.
 */
extern struct s3_missing *s3_missing_new (const char *name, const char *uuid,
                                          unsigned nloc, uint64_t nr_chunks,
                                          struct s3_client *const *clients,
                                          const char *const *prefixes,
                                          bool readonly);
extern void s3_missing_free (struct s3_missing *m);

/* Before each PUT or DELETE of a record in HOLDER's bucket:
 * MAY_CHANGE (OPAQUE, HOLDER) returns 0 if this server may still change
 * that bucket (its lease is certainly its own), else -1 with errno: a
 * server whose lease was taken over never touches the new holder's
 * records.
 */
extern void s3_missing_set_guard (struct s3_missing *m,
                                  int (*may_change) (void *opaque,
                                                     unsigned holder),
                                  void *opaque);

/* Key of the record on a holder about LOC, malloc'd (NULL on ENOMEM). */
extern char *s3_missing_key (const char *prefix, const char *name,
                             unsigned loc);

/* Is REST (what follows "NAME." in a key) the suffix of a record? */
extern bool s3_missing_suffix (const char *rest);

/* What one record object says, for the volume tool's status. */
struct s3_missing_info {
  uint64_t chunks;              /* the bits set: chunks named */
  bool all;                     /* it names every chunk (or is damaged) */
  int64_t started;              /* Unix time it was started at */
};

/* Read the record on HOLDER of what LOC lacks as a load does (FOUND,
 * if not NULL, is called with each chunk it names and MISSING_ALL),
 * and say what it holds in *INFO (a damaged object: every chunk,
 * started now).  Returns 1, 0 if there is no record, -1 after
 * nbdkit_error.  Call once per record of a struct s3_missing that
 * nothing else uses (the bits are added to what it has loaded).
 */
extern int s3_missing_read (struct s3_missing *m, unsigned holder,
                            unsigned loc,
                            void (*found) (void *arg, uint64_t n), void *arg,
                            struct s3_missing_info *info);

/* The operations; their opaque is the struct s3_missing. */
extern const struct missing_log_ops s3_missing_ops;

#endif /* SHARDKIT_S3_MISSING_H */
