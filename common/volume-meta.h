/* shardkit: the NAME.meta file of a volume.
 * GPL-3.0-or-later.
 *
 * NAME.meta is small, plain text, one key=value per line:
 *
 *   # shardkit volume metadata
 *   format=shardkit-volume
 *   version=1
 *   size=1073741824
 *   chunk-size=4194304
 *   uuid=5e0f8f9c-2a53-4a57-9d0e-6c1b8a3f1e42
 *   created=2026-11-25T11:50:00Z
 *   checksum=crc32c:e24b5126
 *
 * Volumes that take part in snapshots (see shardkit(1), SNAPSHOTS AND
 * CLONES) have version 2 and some of these keys, written only when
 * they apply, so that every other volume keeps the version 1 format
 * that older readers take:
 *
 *   generation=3         this volume's own chunks are NAME@3.<n>.chunk
 *   read-only=1          a snapshot: never written
 *   data=VOL@2           a snapshot's own chunks are VOL's frozen
 *                        generation 2 (VOL@2.<n>.chunk)
 *   base=SNAP            chunks this volume does not hold are SNAP's
 *   base-uuid=UUID       SNAP's uuid, checked at open
 *
 * A volume kept on several locations (a mirror: the same chunks in
 * each) has in each location's copy of NAME.meta, also version 2:
 *
 *   redundancy=mirror    every chunk on every location of the set
 *   set-size=3           the set has 3 locations...
 *   set-index=1          ... and this is the second (from 0)
 *
 * and the same uuid= in every location (the volume's): a location of
 * another volume, or in another place of the set, is refused.
 *
 * An erasure-coded set (each chunk as K data and M parity fragments,
 * fragment i on location i: ec-store.h) has version 3, and
 *
 *   redundancy=ec:4+2    K=4 data and M=2 parity fragments
 *   set-size=6           K+M
 *   set-index=1          this location holds fragment 1 of every chunk
 *
 * Version 3 because a version 2 reader would take an unknown
 * redundancy for damage at best, and a reader that skipped it would
 * serve a location's fragments as a plain disk: a version 2 reader
 * refuses version 3.  Mirrors stay version 2.
 *
 * A version 1 reader refuses version 2 ("version 2 is not supported"),
 * which is what keeps it from serving a clone without its base.
 *
 * It is written when the volume is created and rewritten only by the
 * volume tool (resize, snapshot), atomically.
 * The last line is the CRC32C of all the bytes before it; files written
 * before it existed have no such line and are still read (see
 * volume-meta.c).
 */
#ifndef SHARDKIT_VOLUME_META_H
#define SHARDKIT_VOLUME_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume-name.h"

#define VOLUME_META_FORMAT "shardkit-volume"
#define VOLUME_META_VERSION 1
/* The version of metadata with snapshot keys. */
#define VOLUME_META_VERSION_LAYERED 2
/* The version of an erasure-coded location's metadata; the newest. */
#define VOLUME_META_VERSION_EC 3
#define VOLUME_META_MAX_BYTES 4096     /* larger files are corrupt */

#define CHUNK_SIZE_MIN (UINT32_C (64) * 1024)
#define CHUNK_SIZE_MAX (UINT32_C (1024) * 1024 * 1024)
#define CHUNK_SIZE_DEFAULT (UINT32_C (4) * 1024 * 1024)
/* NBD sizes are signed 64 bit in nbdkit. */
#define VOLUME_SIZE_MAX ((uint64_t) INT64_MAX)

struct volume_meta {
  uint64_t size;                /* bytes */
  uint32_t chunk_size;          /* bytes, power of two */
  char uuid[37];                /* canonical 8-4-4-4-12 hex form */
  char created[32];             /* ISO 8601 UTC */
  /* Version 2 keys (all zero / empty when absent). */
  uint64_t generation;          /* where the volume's own chunks live */
  bool read_only;               /* a snapshot */
  char data[VOLUME_NAME_MAX + 1]; /* a snapshot's chunks: volume DATA... */
  uint64_t data_generation;       /* ... generation DATA_GENERATION */
  char base[VOLUME_NAME_MAX + 1]; /* read through to this volume */
  char base_uuid[37];
  /* Set of locations (set_size 0: a volume in one location). */
  char redundancy[16];          /* "mirror" or "ec" */
  uint32_t ec_k, ec_m;          /* "ec": K data + M parity fragments */
  uint32_t set_size;            /* 2..VOLUME_SET_MAX */
  uint32_t set_index;           /* 0..set_size-1 */
};

#define VOLUME_REDUNDANCY_MIRROR "mirror"
#define VOLUME_REDUNDANCY_EC "ec"
#define VOLUME_SET_MAX 8

/* True if *M needs version 2 (it has any snapshot or set key). */
extern bool volume_meta_is_layered (const struct volume_meta *m);

/* True if CS is a power of two between CHUNK_SIZE_MIN and CHUNK_SIZE_MAX. */
extern bool chunk_size_is_valid (uint64_t cs);

/* Fill *M for a new volume: given size and chunk size, a fresh random
 * UUID, the current time.  Returns 0, or -1 with errno set.
 */
extern int volume_meta_init (struct volume_meta *m,
                             uint64_t size, uint32_t chunk_size);

/* Parse the LEN bytes at TEXT.  On success returns 0.  On failure
 * returns -1 and writes a one-line reason into ERR (ERRLEN bytes).
 * Every malformed input is refused: unknown format or version, missing,
 * repeated or out-of-range keys, a line without '=', control bytes, a
 * checksum that does not match, is malformed or is not the last line.
 * Unknown keys are ignored so that a later minor change stays readable.
 */
extern int volume_meta_parse (const char *text, size_t len,
                              struct volume_meta *m,
                              char *err, size_t errlen);

/* Check that an existing volume *M matches the size and chunk size a
 * user gave to create it (0 = not given).  Returns 0, or -1 with a
 * one-line reason naming the parameter in ERR (ERRLEN bytes).
 */
extern int volume_meta_check_create (const struct volume_meta *m,
                                     uint64_t size, uint32_t chunk_size,
                                     char *err, size_t errlen);

/* Return the text of *M, its checksum line last, as malloc'd
 * NUL-terminated string, or NULL with errno set.
 */
extern char *volume_meta_format (const struct volume_meta *m);

#endif /* SHARDKIT_VOLUME_META_H */
