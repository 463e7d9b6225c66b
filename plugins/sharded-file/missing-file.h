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
 *     0    8  chunk number (UINT64_MAX: every chunk, a full resync)
 *     8    4  0 (reserved)
 *     12   4  CRC32C of bytes 0..11
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

/* The operations; their opaque is the struct missing_files. */
extern const struct missing_log_ops missing_file_ops;

#endif /* SHARDKIT_MISSING_FILE_H */
