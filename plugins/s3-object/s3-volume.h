/* shardkit s3-object: one volume in a bucket (PREFIX/NAME.meta and
 * PREFIX/NAME.<n>.chunk objects), with its chunk engine and S3 store.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_S3_VOLUME_H
#define SHARDKIT_S3_VOLUME_H

#include <stdbool.h>
#include <stdint.h>

#include "chunk-engine.h"
#include "s3-http.h"
#include "volume-chain.h"
#include "volume-layer.h"
#include "volume-meta.h"
#include "volume-name.h"

struct s3_volume {
  struct s3_client *client;     /* borrowed from the plugin */
  char *name;
  char *prefix;                 /* "" or ending in '/' */
  bool readonly;
  struct volume_meta meta;
  /* The stem of its own chunks' keys: NAME, NAME@<generation>, or for
   * a snapshot its data= (see volume-name.h, chunk generations).
   */
  char stem[VOLUME_CHUNK_STEM_MAX];
  uint32_t sub_block;           /* bytes per CRC32C in object metadata */
  /* A volume with base= reads through to its base, opened read-only
   * (without an engine or lease: only its store is used), via an
   * overlay, exactly as sharded-file does.
   */
  struct s3_volume *base;
  struct overlay_store *overlay;
  /* What the engine (or a volume above this one) uses: the S3 store
   * over this volume's own chunks, or the overlay.
   */
  struct chunk_store store;
  struct chunk_engine *engine;  /* NULL in a base */
  struct s3_lease *lease;       /* held while open read-write */
};

/* Key of chunk N / of the metadata object, malloc'd (NULL on ENOMEM). */
extern char *s3_volume_chunk_key (const struct s3_volume *v, uint64_t n);
extern char *s3_volume_meta_key (const char *prefix, const char *name);

/* Read NAME.meta (creating the volume if CREATE says so), check it
 * against CREATE, and fill *M.  Returns 0, or -1 after nbdkit_error
 * (errno ENOENT for a volume that does not exist).
 */
extern int s3_volume_prepare (struct s3_client *c, const char *prefix,
                              const char *name,
                              const struct volume_create *create,
                              struct volume_meta *m);

/* Read NAME.meta (no lease: for looking at a volume that may be in
 * use).  Returns 1 with *M filled, 0 if there is no such volume, -1
 * after nbdkit_error (errno EIO if it is corrupt).  For the volume tool.
 */
extern int s3_volume_read_meta (struct s3_client *c, const char *prefix,
                                const char *name, struct volume_meta *m);

/* Create volume NAME with one conditional PUT of its NAME.meta, never
 * over chunk objects left by a volume of that name.  Returns 0, or -1
 * after nbdkit_error (errno EEXIST if the name is taken).  For the
 * volume tool.
 */
extern int s3_volume_create (struct s3_client *c, const char *prefix,
                             const char *name, uint64_t size,
                             uint32_t chunk_size);
/* The same with the metadata *M (snapshot, clone). */
extern int s3_volume_create_meta (struct s3_client *c, const char *prefix,
                                  const char *name,
                                  const struct volume_meta *m);

/* Open the volume: metadata, then (read-write: with the lease of
 * s3-lease.h taken as LEASE says) a listing of its chunks.  PARALLEL is
 * how many chunk requests one NBD request may have in flight.
 * A volume with base= opens its chain of bases read-only and reads
 * through them; a broken chain is refused with one line (see
 * volume-chain.h).  A snapshot (read-only=1) is never written: with
 * FLAGS VOLUME_OPEN_SERVE (a server, not the volume tool, which takes a
 * snapshot's lease to delete it) it is opened read-only whatever
 * READONLY says.  With VOLUME_OPEN_OWN_CHUNKS the bases are not opened.
 * Returns NULL after nbdkit_error.
 */
struct s3_lease_config;
extern struct s3_volume *s3_volume_open (struct s3_client *c,
                                         const char *prefix, const char *name,
                                         bool readonly, unsigned flags,
                                         const struct volume_create *create,
                                         unsigned parallel,
                                         const struct s3_lease_config *lease);
extern void s3_volume_close (struct s3_volume *v);

/* The sub-block size for a chunk size: 64 KiB, or larger so that a
 * chunk has at most 128 sub-blocks (the CRC list must fit in S3's
 * 2 KiB of user metadata).
 */
extern uint32_t s3_sub_block_size (uint32_t chunk_size);

/* What a listed key is to the one listing. */
enum s3_key_class {
  S3_KEY_OURS,          /* wanted: handed to found() */
  S3_KEY_OTHER,         /* expected and not wanted (NAME.meta, ...) */
  S3_KEY_FOREIGN,       /* another volume's key under our prefix: believed
                         * (and ignored) only once two answers agree */
  S3_KEY_SUSPECT,       /* cannot be in a correct answer: the page is
                         * fetched again, and if it stays, it is an error */
};

struct s3_lister {
  /* Classify KEY of SIZE bytes (UINT64_MAX: not given); for a suspect
   * key, set *WHY to a static string.
   */
  enum s3_key_class (*classify) (void *opaque, const char *key,
                                 uint64_t size, const char **why);
  /* Called for each wanted key of a page that passed.  Returns 0 or -1
   * after nbdkit_error.
   */
  int (*found) (void *opaque, const char *key, uint64_t size);
  void *opaque;
  uint64_t max_pages;   /* more than this is an endless listing */
};

/* List the keys under PREFIX with paginated ListObjectsV2, trusting
 * nothing: a page that cannot be parsed, holds a suspect key, goes
 * backwards (a key not after the previous page's last key, or the same
 * continuation token again) is fetched again, up to S3_LIST_FETCHES
 * times, before the listing fails with one line naming the key; and
 * more than MAX_PAGES pages fail too.  Returns 0, or -1 after
 * nbdkit_error.
 */
#define S3_LIST_FETCHES 5
#define S3_LIST_PAGE_MAX (8 * 1024 * 1024)
extern int s3_list_keys (struct s3_client *c, const char *prefix,
                         const struct s3_lister *l);

/* Read a small object whole (at most MAX bytes) into a malloc'd,
 * NUL-terminated buffer.  Returns 1 found, 0 missing, -1 error.
 */
extern int s3_get_small (struct s3_client *c, const char *key, size_t max,
                         char **body, size_t *len);
/* The same, also copying the object's ETag (unquoted) into ETAG. */
extern int s3_get_small_etag (struct s3_client *c, const char *key,
                              size_t max, char **body, size_t *len,
                              char etag[80]);

#endif
