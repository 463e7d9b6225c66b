/* shardkit: the volume layer shared by the plugins.
 * GPL-3.0-or-later.
 *
 * Everything a volume plugin does above its store: the export=, size=
 * and chunk-size= parameters, the default export, creating the default
 * volume at start-up, the table of open volumes (all connections to one
 * volume share one chunk engine, so multi-conn is safe), and the NBD
 * callbacks, forwarded to the chunk engine.  A plugin is its own
 * parameters, a namespace of volumes (struct volume_ops) and its store.
 *
 *   plugin config ──> volume_layer_config (export=, size=, chunk-size=)
 *   .open ──> volume_layer_open ──> ops->open (NAME) ──> engine over a store
 *   .pread ... ──> volume_layer_pread ──> chunk_engine_pread
 *
 * Opening a volume may take network round trips (S3: metadata, lease,
 * a listing), so the table's lock is never held across ops->open: a
 * slow open of one volume never delays another's; connections asking
 * for the same volume wait for the one opening it.
 */
#ifndef SHARDKIT_VOLUME_LAYER_H
#define SHARDKIT_VOLUME_LAYER_H

#include <stdbool.h>
#include <stdint.h>

struct nbdkit_exports;
struct nbdkit_extents;
struct chunk_engine;

/* What a user asked for: create the default volume if it is missing
 * (SIZE != 0), and check an existing one against these.
 */
struct volume_create {
  uint64_t size;                /* 0: never create */
  uint32_t chunk_size;          /* 0: the default; else must match */
};

/* A plugin's namespace of volumes (a directory, a bucket and prefix). */
struct volume_ops {
  /* "sharded-file volume": the start of export descriptions. */
  const char *kind;
  /* Writes of whole chunks are much cheaper than smaller ones (stores
   * that rewrite whole chunks): advertise the chunk size as the
   * preferred block size.  Otherwise 4096.
   */
  bool prefer_whole_chunks;
  /* Every export name means the one volume (s3-object's key= mode):
   * names are not checked, and the default export always exists.
   */
  bool one_volume;

  /* At start-up, for the default volume: create it if CREATE says so,
   * check an existing one against CREATE, refuse early what would fail
   * at the first client.  Returns 0, or -1 after nbdkit_error.
   */
  int (*prepare) (const char *name, const struct volume_create *create);
  /* Open volume NAME for serving.  CREATE is NULL except for the
   * default volume.  Returns the plugin's volume, or NULL after
   * nbdkit_error with errno set.
   */
  void *(*open) (const char *name, bool readonly,
                 const struct volume_create *create);
  /* The volume's chunk engine. */
  struct chunk_engine *(*engine) (void *vol);
  /* True if the volume can never be written (a raw object). */
  bool (*read_only) (void *vol);
  /* Close a volume (at unload: no requests are in flight). */
  void (*close) (void *vol);
  /* Add every volume of the namespace with nbdkit_add_export. */
  int (*list_exports) (struct nbdkit_exports *exports);
};

/* Check an existing volume NAME (in WHERE, for messages) whose metadata
 * is *M against what the user asked CREATE (NULL: nothing asked).
 * Returns 0, or -1 after one nbdkit_error naming the parameter (EINVAL).
 */
struct volume_meta;
extern int volume_check_create (const char *name, const char *where,
                                const struct volume_meta *m,
                                const struct volume_create *create);

/* Call from the plugin's .load (or .config_complete, before anything
 * else of the layer) with ops that live as long as the plugin.
 */
extern void volume_layer_init (const struct volume_ops *ops);

/* The layer's parameters.  Returns 1 if KEY is one of them (handled),
 * 0 if not, -1 after nbdkit_error for a bad value.
 */
extern int volume_layer_config (const char *key, const char *value);
extern int volume_layer_config_complete (void);
#define VOLUME_LAYER_CONFIG_HELP \
  "export=<NAME>       Volume served to clients asking for the default export.\n" \
  "size=<SIZE>         Create export=NAME with this size if it does not exist.\n" \
  "chunk-size=<SIZE>   Chunk size of a new volume (power of two, 64K-1G, default 4M)."

/* export= (NULL if not given). */
extern const char *volume_layer_default_volume (void);

/* The plugin callbacks.  Plugins put these straight into their struct
 * nbdkit_plugin.
 */
extern int volume_layer_get_ready (void);
extern void volume_layer_unload (void);
extern int volume_layer_list_exports (int readonly, int is_tls,
                                      struct nbdkit_exports *exports);
extern const char *volume_layer_default_export (int readonly, int is_tls);
extern void *volume_layer_open (int readonly);
extern void volume_layer_close (void *handle);
extern const char *volume_layer_export_description (void *handle);
extern int64_t volume_layer_get_size (void *handle);
extern int volume_layer_block_size (void *handle, uint32_t *minimum,
                                    uint32_t *preferred, uint32_t *maximum);
extern int volume_layer_can_write (void *handle);
extern int volume_layer_can_multi_conn (void *handle);
extern int volume_layer_can_flush (void *handle);
extern int volume_layer_can_trim (void *handle);
extern int volume_layer_can_zero (void *handle);
extern int volume_layer_can_fast_zero (void *handle);
extern int volume_layer_can_fua (void *handle);
extern int volume_layer_can_cache (void *handle);
extern int volume_layer_can_extents (void *handle);
extern int volume_layer_is_rotational (void *handle);
extern int volume_layer_pread (void *handle, void *buf, uint32_t count,
                               uint64_t offset, uint32_t flags);
extern int volume_layer_pwrite (void *handle, const void *buf,
                                uint32_t count, uint64_t offset,
                                uint32_t flags);
extern int volume_layer_flush (void *handle, uint32_t flags);
extern int volume_layer_trim (void *handle, uint32_t count, uint64_t offset,
                              uint32_t flags);
extern int volume_layer_zero (void *handle, uint32_t count, uint64_t offset,
                              uint32_t flags);
extern int volume_layer_extents (void *handle, uint32_t count,
                                 uint64_t offset, uint32_t flags,
                                 struct nbdkit_extents *extents);
extern int volume_layer_cache (void *handle, uint32_t count, uint64_t offset,
                               uint32_t flags);

/* Fill the volume callbacks of a struct nbdkit_plugin (designated
 * initialisers), so that each plugin does not list them again.  The
 * plugin's own .get_ready and .unload call volume_layer_get_ready and
 * volume_layer_unload beside their own work.
 */
#define VOLUME_LAYER_CALLBACKS                                  \
  .list_exports       = volume_layer_list_exports,              \
  .default_export     = volume_layer_default_export,            \
  .open               = volume_layer_open,                      \
  .close              = volume_layer_close,                     \
  .export_description = volume_layer_export_description,       \
  .get_size           = volume_layer_get_size,                  \
  .block_size         = volume_layer_block_size,                \
  .can_write          = volume_layer_can_write,                 \
  .can_multi_conn     = volume_layer_can_multi_conn,            \
  .can_flush          = volume_layer_can_flush,                 \
  .can_trim           = volume_layer_can_trim,                  \
  .can_zero           = volume_layer_can_zero,                  \
  .can_fast_zero      = volume_layer_can_fast_zero,             \
  .can_fua            = volume_layer_can_fua,                   \
  .can_cache          = volume_layer_can_cache,                 \
  .can_extents        = volume_layer_can_extents,               \
  .is_rotational      = volume_layer_is_rotational,             \
  .pread              = volume_layer_pread,                     \
  .pwrite             = volume_layer_pwrite,                    \
  .flush              = volume_layer_flush,                     \
  .trim               = volume_layer_trim,                      \
  .zero               = volume_layer_zero,                      \
  .extents            = volume_layer_extents,                   \
  .cache              = volume_layer_cache,                     \
  .errno_is_preserved = 1

#endif /* SHARDKIT_VOLUME_LAYER_H */
