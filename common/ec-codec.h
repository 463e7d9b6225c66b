/* shardkit: Reed-Solomon erasure coding of chunks (through ISA-L).
 * GPL-3.0-or-later.
 *
 * A chunk of LEN bytes is cut into K data fragments of
 * ec_fragment_len (K, LEN) bytes each (the last one padded with zeros)
 * and M parity fragments of the same length.  Any K of the K+M
 * fragments give the chunk back.  The coding matrix is ISA-L's Cauchy
 * matrix, whose every K x K submatrix is invertible (ISA-L's Vandermonde
 * matrix is not, for some K and M): so any K fragments always do.  The
 * arithmetic is ISA-L's (ec_init_tables, ec_encode_data,
 * gf_invert_matrix): none is written here.
 *
 * A codec is immutable after ec_codec_new: share it between threads.
 * Decoding tables for a set of survivors are built per call (a K x K
 * inversion, microseconds: small beside a chunk's worth of coding).
 */
#ifndef SHARDKIT_EC_CODEC_H
#define SHARDKIT_EC_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits: ISA-L works in GF(2^8), so K + M <= 255; a volume has at most
 * one location per fragment, and more than this is not a set anybody
 * runs.
 */
#define EC_MAX_K 32
#define EC_MAX_M 16

struct ec_codec;

/* NULL with errno EINVAL (K or M out of range) or ENOMEM. */
struct ec_codec *ec_codec_new (unsigned k, unsigned m);
void ec_codec_free (struct ec_codec *ec);
unsigned ec_codec_k (const struct ec_codec *ec);
unsigned ec_codec_m (const struct ec_codec *ec);

/* Length of each fragment of a chunk of LEN bytes: LEN / K rounded up
 * to a multiple of 64 (ISA-L's vector width; the padding is zeros).
 */
size_t ec_fragment_len (unsigned k, size_t len);

/* Cut CHUNK (LEN bytes) into the K + M fragments FRAGS[i], each of
 * ec_fragment_len bytes, allocated by the caller.  Returns 0.
 */
int ec_encode (const struct ec_codec *ec, const void *chunk, size_t len,
               uint8_t **frags);

/* Rebuild what is missing.  FRAGS[i] holds fragment i where PRESENT[i],
 * else a buffer to rebuild it into; each FRAG_LEN bytes.  At least K
 * must be present.  Every missing fragment, data and parity, is
 * rebuilt.  Returns 0, or -1 with errno EIO when fewer than K are
 * present (or EINVAL, ENOMEM).
 */
int ec_rebuild (const struct ec_codec *ec, uint8_t **frags,
                const bool *present, size_t frag_len);

/* The chunk of LEN bytes from its K data fragments (after ec_rebuild
 * if some were missing).
 */
void ec_join (const struct ec_codec *ec, uint8_t *const *frags,
              void *chunk, size_t len);

#endif /* SHARDKIT_EC_CODEC_H */
