/* shardkit volume tool: WHERE the volumes are, a directory or a bucket.
 * GPL-3.0-or-later.
 *
 * The commands work on a struct where through struct where_ops, and on
 * an open volume through the chunk store and engine that the plugins
 * use (struct tool_volume), so that every command runs unchanged on
 * both kinds of namespace, and the format is implemented once: in
 * common/ (names, metadata), the file store (plugins/sharded-file) and
 * the S3 store (plugins/s3-object).
 */
#ifndef SHARDKIT_TOOL_WHERE_H
#define SHARDKIT_TOOL_WHERE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunk-engine.h"
#include "volume-chain.h"
#include "volume-meta.h"

struct where;

/* One file or object of some volume, found by a scan. */
enum entry_kind { ENTRY_META, ENTRY_LEASE, ENTRY_CHUNK };
struct where_entry {
  const char *volume;
  enum entry_kind kind;
  uint64_t n;                   /* chunk number (ENTRY_CHUNK) */
  uint64_t gen;                 /* its generation (ENTRY_CHUNK) */
  uint64_t size;                /* its length in bytes */
  uint64_t stored;              /* bytes it takes in the store (files:
                                 * allocated blocks; objects: size) */
};
typedef int (*where_scan_fn) (void *opaque, const struct where_entry *e);

/* A volume opened through its store, as a plugin opens it. */
struct tool_volume {
  struct where *w;
  char *name;
  bool write;                   /* opened read-write: lock or lease held */
  struct volume_meta meta;
  struct chunk_engine *engine;
  const struct chunk_store_ops *ops;
  void *store;                  /* ops' store: the file or S3 volume */
  /* The volume as a server reads it: through its bases (an overlay
   * store) when it has any, else the same as ops and store.  The
   * engine works on this; OPS and STORE are the volume's own chunks.
   */
  struct chunk_store view;
  bool removed;                 /* its metadata is gone (delete) */
};

/* How where_ops.open opens a volume (false and true are READ and
 * WRITE).
 */
#define TOOL_OPEN_READ        0
#define TOOL_OPEN_WRITE       1
/* Its own chunks only, its chain of bases not opened (view is then
 * its own store): delete, which must work on a broken chain too.
 */
#define TOOL_OPEN_OWN_CHUNKS  2
/* The metadata, lock or lease and the chain's checks only, nothing
 * listed: engine is NULL and view is its own store (snapshot, clone,
 * rollback: the same few requests for a volume of any size).
 */
#define TOOL_OPEN_META_ONLY   4

/* The flags of file_volume_open and s3_volume_open for HOW. */
static inline unsigned
volume_open_flags (unsigned how)
{
  return (how & TOOL_OPEN_OWN_CHUNKS ? VOLUME_OPEN_OWN_CHUNKS : 0) |
    (how & TOOL_OPEN_META_ONLY ? VOLUME_OPEN_META_ONLY : 0);
}

struct where_ops {
  const char *kind;             /* "directory", "bucket" */
  /* Call FN for every file or object that some volume owns (ONLY not
   * NULL: only those of volume ONLY).  Returns 0, -1 after an error, or
   * what FN returned if not 0.
   */
  int (*scan) (struct where *w, const char *only, where_scan_fn fn,
               void *opaque);
  /* Read NAME's metadata: 1 found, 0 no such volume, -1 after an error
   * (errno EIO: the metadata is corrupt).
   */
  int (*read_meta) (struct where *w, const char *name, struct volume_meta *m);
  /* Create NAME.  Returns 0, or -1 after an error (errno EEXIST if
   * the name is taken).
   */
  int (*create) (struct where *w, const char *name, uint64_t size,
                 uint32_t chunk_size);
  /* Create NAME with metadata *M, atomically (errno EEXIST if the name
   * is taken).
   */
  int (*create_meta) (struct where *w, const char *name,
                      const struct volume_meta *m);
  /* Who holds NAME: 0 nobody, 1 somebody (described in BUF), -1 after
   * an error.
   */
  int (*holder) (struct where *w, const char *name, char *buf, size_t len);
  /* Open NAME as the plugins do.  HOW is TOOL_OPEN_READ or
   * TOOL_OPEN_WRITE, perhaps with TOOL_OPEN_OWN_CHUNKS.  Read-write
   * takes the volume's lock or lease exclusively and fails with one
   * error naming the holder if another process has it.  PARALLEL:
   * chunk requests in flight at once.  Returns 0 or -1 after an error.
   */
  int (*open) (struct where *w, const char *name, unsigned how,
               unsigned parallel, struct tool_volume *tv);
  /* Replace the metadata of TV (open read-write) by *M. */
  int (*rewrite_meta) (struct tool_volume *tv, const struct volume_meta *m);
  /* Make the store of TV (open read-write) take the volume as SIZE
   * bytes long from now on, when it works out the span of a chunk
   * (resize, before it rewrites a last chunk cut short).
   */
  void (*store_set_size) (struct tool_volume *tv, uint64_t size);
  /* Remove the metadata of TV (open read-write, its chunks removed). */
  int (*remove_meta) (struct tool_volume *tv);
  /* Close TV: the lock or lease is released. */
  void (*close) (struct tool_volume *tv);
};

struct where {
  const struct where_ops *ops;
  char *display;                /* as the user gave it, for messages */
  /* What the namespace is, whatever way it was written ("dir:" and the
   * real path; "s3:", the endpoint, the bucket and the prefix): two
   * WHEREs with the same place are one namespace (copy).
   */
  char *place;
  void *priv;
};

/* Open WHERE (a directory, or s3://BUCKET[/PREFIX]).  Returns 0 or -1
 * after an error.
 */
extern int where_open (const char *spec, struct where *w);
extern void where_close (struct where *w);

/* Call FN for every volume of W with its metadata M, or with M NULL
 * and WHY what is wrong when its metadata cannot be read (a volume
 * whose metadata went meanwhile is left out).  Returns 0, -1 after an
 * error, or what FN returned if not 0.
 */
typedef int (*where_volume_fn) (void *opaque, const char *name,
                                const struct volume_meta *m,
                                const char *why);
extern int where_each_volume (struct where *w, where_volume_fn fn,
                              void *opaque);

extern int where_dir_open (const char *path, struct where *w);
extern void where_dir_close (struct where *w);
extern int where_s3_open (const char *url, struct where *w);
extern void where_s3_close (struct where *w);
/* The client of a bucket W (where_s3_open) and its key prefix ("" or
 * ending in '/'), both W's.
 */
struct s3_client;
extern struct s3_client *where_s3_client (struct where *w,
                                          const char **prefix);

#endif
