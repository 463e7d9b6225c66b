/* shardkit sharded-file: the record of what a location of a set lacks,
 * as files in the other locations' directories (missing-set.h,
 * struct missing_log_ops).
 * GPL-3.0-or-later.
 *
 * Location H's directory holds NAME.missing.L for each location L that
 * lacks chunks H holds: an append-only log, little-endian:
 *
 *   header, 64 bytes:
 *     0   16  magic "shardkit-missing" (no NUL)
 *     16  36  the volume's uuid (as in NAME.meta)
 *     52   4  L, the location that lacks the chunks
 *     56   4  H, the location holding this file
 *     60   4  CRC32C of bytes 0..59
 *   then records of 16 bytes:
 *     0    8  kind 0: chunk number (UINT64_MAX: every chunk, a full
 *             resync); kind 1: the Unix time (seconds) the file was
 *             started at
 *     8    4  kind: 0 a chunk L lacks, 1 the time the file was started
 *     12   4  CRC32C of bytes 0..11
 *
 * The first record of a file is its start time (kind 1), so that the
 * age of the oldest record can be told (the volume tool's status, how
 * far behind a location is); files made before kind 1 existed have
 * none, and their age is that of their last change (mtime), less than
 * the truth.  A reader meeting a kind it does not know takes it for
 * damage (below): slow, never wrong.
 *
 * Appends are made durable (fdatasync, and the directory's fsync when
 * the file was created) before they return; appends from several
 * threads share one fdatasync (group commit).  When L lacks nothing any
 * more the file is removed (the directory synced), which is the
 * compaction.  Reading: no file is an empty record; a record cut short
 * at the end is an append that never completed (its write was never
 * acknowledged) and is ignored; a header or a record whose CRC does not
 * match is damage, and reads as "lacks every chunk" (a full resync:
 * slow, never wrong); a file of another volume (uuid) or another place
 * is refused.
 */
#ifndef SHARDKIT_MISSING_FILE_H
#define SHARDKIT_MISSING_FILE_H

#include <stdbool.h>
#include <stdint.h>

#include "missing-set.h"

struct missing_files;

/* The records of volume NAME (uuid UUID) in the directories DIRFDS[i]
 * (called DIRNAMES[i] in messages, both borrowed), i < NLOC.  READONLY:
 * a server that never writes (-r) loads them and changes nothing
 * (appends fail with EROFS).
 */
extern struct missing_files *missing_files_new (const char *name,
                                                const char *uuid,
                                                unsigned nloc,
                                                const int *dirfds,
                                                const char *const *dirnames,
                                                bool readonly);
extern void missing_files_free (struct missing_files *f);

/* Location H's directory is DIRFD from now on (it did not answer when
 * F was made, or came back as another directory).  Only while H is
 * down: nothing reads or writes its records meanwhile.
 */
extern void missing_files_set_dirfd (struct missing_files *f, unsigned h,
                                     int dirfd);

/* When was the record on HOLDER of what LOC lacks started?  Returns 1
 * with *T (seconds since the epoch), 0 if there is no record, -1 after
 * nbdkit_error.  For the volume tool's status.
 */
extern int missing_file_started (struct missing_files *f, unsigned holder,
                                 unsigned loc, int64_t *t);

/* The operations; their opaque is the struct missing_files. */
extern const struct missing_log_ops missing_file_ops;

#endif /* SHARDKIT_MISSING_FILE_H */
