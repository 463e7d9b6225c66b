/* shardkit: which strings are acceptable volume (export) names.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_VOLUME_NAME_H
#define SHARDKIT_VOLUME_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VOLUME_NAME_MAX 200

/* A volume name is letters, digits and "._-", does not start with '.',
 * and is 1..VOLUME_NAME_MAX bytes.  Such a name can be used as a file name
 * component and as part of an S3 key without any escaping, and can never
 * climb out of its directory or prefix.
 *
 * Returns true if NAME is acceptable.  Otherwise returns false and, when
 * WHY is not NULL, points *WHY at a static string saying what is wrong.
 */
extern bool volume_name_is_valid (const char *name, const char **why);

/* If FILENAME is "NAME.meta" with NAME a valid volume name, copy NAME
 * into OUT (size at least VOLUME_NAME_MAX+1) and return true.
 */
extern bool volume_name_from_meta_file (const char *filename, char *out);

/* If S is "<n>.chunk" with n a decimal number without leading zeros
 * (the tail of a chunk's name after "NAME."), store n and return true.
 */
extern bool volume_chunk_suffix_parse (const char *s, uint64_t *n);

/* If FILENAME is "NAME.<n>.chunk" with NAME a valid volume name, copy
 * NAME into NAME_OUT (size at least VOLUME_NAME_MAX+1), store n and
 * return true.  (For tools that go through a whole namespace at once.)
 * Generation 0 only: see volume_chunk_name_parse_gen.
 */
extern bool volume_chunk_name_parse (const char *filename, char *name_out,
                                     uint64_t *n);

/* Chunk generations (snapshots).  The chunks of generation 0 of volume
 * NAME are "NAME.<n>.chunk" (the format before snapshots); those of
 * generation g > 0 are "NAME@<g>.<n>.chunk".  '@' never occurs in a
 * volume name, so no name of one format is a name of the other.  A
 * snapshot freezes a volume's current generation and the volume goes
 * on writing the next one (see volume-meta.h).
 *
 * The stem of the chunk names of generation GEN of NAME ("NAME" or
 * "NAME@<g>") into BUF (LEN bytes; VOLUME_CHUNK_STEM_MAX is enough).
 */
#define VOLUME_CHUNK_STEM_MAX (VOLUME_NAME_MAX + 22)
extern void volume_chunk_stem (const char *name, uint64_t gen,
                               char *buf, size_t len);

/* If S is "NAME" or "NAME@<g>" (g decimal, > 0, no leading zeros) with
 * NAME a valid volume name, copy NAME into NAME_OUT (size at least
 * VOLUME_NAME_MAX+1), store g (0 for "NAME") and return true.
 */
extern bool volume_chunk_stem_parse (const char *s, char *name_out,
                                     uint64_t *gen);

/* As volume_chunk_name_parse, for any generation: "NAME.<n>.chunk" or
 * "NAME@<g>.<n>.chunk".
 */
extern bool volume_chunk_name_parse_gen (const char *filename,
                                         char *name_out, uint64_t *gen,
                                         uint64_t *n);

/* True if FILENAME (an object key after the namespace's prefix, or a
 * file name) is one that some volume owns: NAME.meta, NAME.lease or
 * NAME.<n>.chunk with NAME a valid volume name.
 */
extern bool volume_name_owns_file (const char *filename);

#endif /* SHARDKIT_VOLUME_NAME_H */
