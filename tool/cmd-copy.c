/* shardkit volume tool: copy NAME, with its snapshots, to DEST.
 * GPL-3.0-or-later.
 *
 *   copy WHERE NAME DEST
 *
 * DEST is another WHERE (a directory or a bucket: any of the four
 * ways), and the copy keeps the name.  The volume format is the same in
 * both, so the copy is file for object: NAME.meta and each chunk,
 * byte for byte, under the same names.  It goes through struct
 * where_ops and the stores only, so that it is the same code for every
 * kind of WHERE.
 *
 * With its snapshots: NAME and every volume of its chain of bases
 * (base=, recursively), the bottom one first, so that each volume's
 * bases are in DEST before it.  The metadata is copied exactly (uuid,
 * generation, data=, base=, base-uuid=, read-only), so the chain checks
 * in DEST as it did in WHERE.  A base that DEST holds already with the
 * same metadata (copied with a sibling clone earlier) is used as it is.
 *
 * Chunk by chunk: the chunks a volume holds itself (its store's
 * listing, not the view through its bases) are read whole from WHERE's
 * store and written whole to DEST's, --jobs at once.  Absent chunks
 * stay absent, and so does a chunk of zeros, except in a volume with a
 * base, where it hides the base's chunk: it is written as a whiteout
 * (an empty chunk), as the overlay store writes one.  Each chunk is
 * then read back from DEST and compared with what was read (CRC32C);
 * the stores verify what they read on both sides (digests in a bucket).
 *
 * Crash safety: DEST's metadata for a volume is only ever either a
 * volume being filled or the finished copy.  A volume's chunks are
 * written through a writable volume that owns their names: the volume
 * itself, or, for a snapshot (data=VOL@g), volume VOL at generation g,
 * since the format only lets a writable volume write chunks.  That
 * "staging" volume is created with a fresh uuid and no base, so that
 * nothing in DEST takes it for the finished copy (a clone checks its
 * base's uuid, and a later copy reuses a base only with the same
 * metadata).  Once every chunk is written, read back and synced, the
 * exact metadata is written: the volume's own replaced, or a snapshot's
 * created and then VOL's removed (a crash in between leaves the shape
 * of an interrupted snapshot: the snapshot, and a VOL that still
 * writes its generation; delete the snapshot, then VOL).  A copy that
 * fails removes what it wrote of that volume; one that was killed
 * leaves the staging volume, which the next copy refuses (it exists in
 * DEST): delete it and copy again.  shardkit(1), COPY.
 *
 * The source volume is opened read-only for the whole copy (so that no
 * snapshot or rollback changes its chain meanwhile), each staging
 * volume read-write (its lock or lease: nothing serves it meanwhile).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "chunk-list.h"
#include "cleanup.h"
#include "commands.h"
#include "crc32c.h"
#include "overlay-store.h"
#include "parallel.h"
#include "tool.h"
#include "volume-meta.h"
#include "volume-name.h"
#include "where.h"

/* Data is written in blocks of this size to a store that writes in
 * place, so that a chunk keeps its holes.
 */
#define HOLE_BLOCK 4096

/* One volume of the chain. */
struct chain_volume {
  char name[VOLUME_NAME_MAX + 1];
  struct volume_meta meta;      /* as in WHERE: written to DEST last */
  /* Its own chunks are generation GEN of volume OWNER: its own, or a
   * snapshot's data=.  OWNER is the staging volume in DEST.
   */
  char owner[VOLUME_NAME_MAX + 1];
  uint64_t gen;
  bool there;                   /* in DEST already: used as it is */
  bool done;                    /* copied by this copy */
  /* What it copied. */
  uint64_t chunks, bytes, zeros;
};

struct copy {
  struct where *from, *to;
  const char *name;
  struct chain_volume chain[OVERLAY_MAX_DEPTH + 1]; /* the bottom first */
  unsigned len;
  struct problems problems;     /* of the volume that failed */
  const char *bad_volume;
};

/* Copying the chunks of one volume: the workers' shared state. */
struct job {
  struct tool_volume *src, *dst;
  bool layered;                 /* it has a base: zeros are whiteouts */
  const struct chunk_list *chunks;
  _Atomic size_t next;
  _Atomic uint64_t copied, bytes, zeros;
  struct problems *problems;
  pthread_mutex_t lock;         /* protects failure */
  _Atomic bool stop;            /* a write failed: no more chunks */
  char failure[1024];
};

static bool
same_meta (const struct volume_meta *a, const struct volume_meta *b)
{
  return a->size == b->size && a->chunk_size == b->chunk_size &&
    strcmp (a->uuid, b->uuid) == 0 && a->generation == b->generation &&
    a->read_only == b->read_only && strcmp (a->data, b->data) == 0 &&
    a->data_generation == b->data_generation &&
    strcmp (a->base, b->base) == 0 && strcmp (a->base_uuid, b->base_uuid) == 0;
}

static void
set_volume (struct chain_volume *v, const char *name,
            const struct volume_meta *m)
{
  memset (v, 0, sizeof *v);
  snprintf (v->name, sizeof v->name, "%s", name);
  v->meta = *m;
  if (m->data[0]) {
    snprintf (v->owner, sizeof v->owner, "%s", m->data);
    v->gen = m->data_generation;
  }
  else {
    snprintf (v->owner, sizeof v->owner, "%s", name);
    v->gen = m->generation;
  }
}

/* The chain of TOP (open in WHERE) into c->chain, the bottom first:
 * the bases' metadata, each checked against the uuid its child names.
 */
static int
read_chain (struct copy *c, const struct tool_volume *top)
{
  struct chain_volume up[OVERLAY_MAX_DEPTH + 1];
  unsigned n = 0, i;

  set_volume (&up[n++], c->name, &top->meta);
  while (up[n-1].meta.base[0]) {
    const struct chain_volume *child = &up[n-1];
    struct volume_meta m;
    int r;

    if (n > OVERLAY_MAX_DEPTH) {
      tool_error ("volume '%s' has more than %d bases", c->name,
                  OVERLAY_MAX_DEPTH);
      return -1;
    }
    r = c->from->ops->read_meta (c->from, child->meta.base, &m);
    if (r == 0)
      tool_error ("volume '%s' in %s: its base '%s' does not exist",
                  child->name, c->from->display, child->meta.base);
    if (r != 1)
      return -1;
    if (strcmp (m.uuid, child->meta.base_uuid) != 0) {
      tool_error ("volume '%s' in %s: its base '%s' has uuid %s, not %s",
                  child->name, c->from->display, child->meta.base, m.uuid,
                  child->meta.base_uuid);
      return -1;
    }
    set_volume (&up[n], child->meta.base, &m);
    n++;
  }
  for (i = 0; i < n; ++i)
    c->chain[i] = up[n - 1 - i];
  c->len = n;
  return 0;
}

/* What DEST holds that stops the copy of the chain.  Each volume of
 * DEST is looked at once (DEST_VOLUME); a refusal is one line.
 */
struct clash {
  struct copy *c;
  /* For each volume of the chain: whether DEST has a volume named as
   * its staging volume, and a volume of DEST that reads the same
   * chunks (the same generation of the same volume).
   */
  bool named[OVERLAY_MAX_DEPTH + 1];
  char reader[OVERLAY_MAX_DEPTH + 1][VOLUME_NAME_MAX + 1];
  /* Chunk files or objects of its chunk names with no volume. */
  uint64_t strays[OVERLAY_MAX_DEPTH + 1];
};

static int
dest_volume (void *opaque, const char *name, const struct volume_meta *m,
             const char *why)
{
  struct clash *k = opaque;
  struct copy *c = k->c;
  unsigned i;

  /* It might read any chunks: we cannot tell which. */
  if (m == NULL) {
    tool_error ("cannot tell whether volume '%s' in %s shares chunks with "
                "the copy: %s", name, c->to->display, why);
    return -1;
  }
  for (i = 0; i < c->len; ++i) {
    struct chain_volume *v = &c->chain[i];

    if (strcmp (name, v->name) == 0) {
      if (i == c->len - 1) {
        tool_error ("volume '%s' already exists in %s", name,
                    c->to->display);
        return -1;
      }
      if (!same_meta (m, &v->meta)) {
        tool_error ("volume '%s' in %s is not the base '%s' of '%s' in %s "
                    "(another uuid or metadata: another volume, or a copy "
                    "that was interrupted: delete it)", name, c->to->display,
                    name, c->name, c->from->display);
        return -1;
      }
      v->there = true;
    }
    else if (strcmp (name, v->owner) == 0)
      k->named[i] = true;
    else if (strcmp (m->data, v->owner) == 0 &&
             m->data_generation == v->gen)
      snprintf (k->reader[i], sizeof k->reader[i], "%s", name);
  }
  return 0;
}

/* Chunks in DEST named as those of a volume to copy.  Once no volume
 * of DEST is found to read them, they are left over (by hand: copy and
 * delete never leave any), and would become part of the copy.
 */
static int
dest_chunk (void *opaque, const struct where_entry *e)
{
  struct clash *k = opaque;
  unsigned i;

  if (e->kind != ENTRY_CHUNK)
    return 0;
  for (i = 0; i < k->c->len; ++i)
    if (strcmp (e->volume, k->c->chain[i].owner) == 0 &&
        e->gen == k->c->chain[i].gen)
      k->strays[i]++;
  return 0;
}

/* Everything that would refuse the copy, before anything is written:
 * which bases DEST has already, and that the chunk names of the others
 * are free there.
 */
static int
check_dest (struct copy *c)
{
  struct clash k = { .c = c };
  unsigned i;

  if (where_each_volume (c->to, dest_volume, &k) != 0 ||
      c->to->ops->scan (c->to, NULL, dest_chunk, &k) != 0)
    return -1;
  for (i = 0; i < c->len; ++i) {
    const struct chain_volume *v = &c->chain[i];
    char stem[VOLUME_CHUNK_STEM_MAX];

    if (v->there)
      continue;
    volume_chunk_stem (v->owner, v->gen, stem, sizeof stem);
    if (k.reader[i][0]) {
      tool_error ("cannot copy '%s': its chunks (%s) are those of volume "
                  "'%s' in %s", v->name, stem, k.reader[i], c->to->display);
      return -1;
    }
    if (k.named[i]) {
      tool_error ("cannot copy snapshot '%s': its chunks are %s, which the "
                  "copy writes as volume '%s', and %s has a volume '%s'",
                  v->name, stem, v->owner, c->to->display, v->owner);
      return -1;
    }
    if (k.strays[i]) {
      tool_error ("%s holds %" PRIu64 " chunk(s) %s.N.chunk that no volume "
                  "reads (left over): remove them, then copy again",
                  c->to->display, k.strays[i], stem);
      return -1;
    }
  }
  return 0;
}

static void
job_fail (struct job *j, uint64_t n, const char *why)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&j->lock);
  if (!j->stop)
    snprintf (j->failure, sizeof j->failure, "chunk %" PRIu64 ": %s", n,
              why);
  j->stop = true;
}

/* The length of BUF (LEN bytes) without its trailing zeros. */
static uint32_t
data_length (const unsigned char *buf, uint32_t len)
{
  while (len > 0) {
    uint32_t start = (len - 1) / HOLE_BLOCK * HOLE_BLOCK;
    if (!buffer_is_zero (buf + start, len - start))
      break;
    len = start;
  }
  while (len > 0 && buf[len - 1] == 0)
    len--;
  return len;
}

/* Write chunk N, SPAN bytes at BUF that are not all zeros, to a chunk
 * of DST that does not exist yet.  A store that writes in place gets
 * only the blocks that hold data, up to the last byte of data, so that
 * the chunk keeps its holes and its length (a file reads as zeros where
 * it has no blocks and past its end); one that takes whole chunks gets
 * it whole, and stores it short itself.
 */
static int
write_data (struct tool_volume *dst, uint64_t n, const unsigned char *buf,
            uint32_t span)
{
  const uint32_t len = data_length (buf, span);
  uint32_t off = 0;

  if (!dst->ops->partial_write)
    return dst->ops->write (dst->store, n, buf, span, 0, false);
  while (off < len) {
    uint32_t end;

    /* LEN ends in data: the last block is never skipped. */
    while (off + HOLE_BLOCK < len && buffer_is_zero (buf + off, HOLE_BLOCK))
      off += HOLE_BLOCK;
    for (end = off; end + HOLE_BLOCK < len; end += HOLE_BLOCK)
      if (buffer_is_zero (buf + end, HOLE_BLOCK))
        break;
    if (end + HOLE_BLOCK >= len)
      end = len;
    if (end > off &&
        dst->ops->write (dst->store, n, buf + off, end - off, off,
                         false) == -1)
      return -1;
    off = end;
  }
  return 0;
}

/* Read chunk N back from DEST into BUF and compare it with CRC, the
 * CRC32C of the SPAN bytes read from WHERE.
 */
static void
verify_chunk (struct job *j, uint64_t n, void *buf, uint32_t span,
              uint32_t crc)
{
  char what[1100];
  const char *why;
  int r;

  error_capture_begin ();
  r = j->dst->ops->read (j->dst->store, n, buf, span, 0);
  why = error_capture_end ();
  if (r == -1)
    snprintf (what, sizeof what, "read back from %s: %s",
              j->dst->w->display, why);
  else if (r == 1)
    snprintf (what, sizeof what, "missing in %s when read back",
              j->dst->w->display);
  else if (crc32c (0, buf, span) != crc)
    snprintf (what, sizeof what, "reads back from %s differently from the "
              "source", j->dst->w->display);
  else
    return;
  problems_add (j->problems, n, what);
}

static void
copy_chunk (struct job *j, uint64_t n, unsigned char *buf)
{
  const struct volume_meta *m = &j->src->meta;
  const uint32_t span = chunk_span_of (m->size, m->chunk_size, n);
  static const char nothing[1];
  const char *why;
  uint32_t crc;
  bool zero;
  int r;

  error_capture_begin ();
  r = j->src->ops->read (j->src->store, n, buf, span, 0);
  why = error_capture_end ();
  if (r != 0) {
    problems_add (j->problems, n, r == 1 ?
                  "listed, but missing when read" : why);
    return;
  }
  zero = buffer_is_zero (buf, span);
  if (zero && !j->layered) {
    j->zeros++;
    return;
  }
  crc = crc32c (0, buf, span);
  error_capture_begin ();
  if (zero)
    r = j->dst->ops->write (j->dst->store, n, nothing, 0, 0, false);
  else
    r = write_data (j->dst, n, buf, span);
  why = error_capture_end ();
  if (r == -1) {
    job_fail (j, n, why);
    return;
  }
  verify_chunk (j, n, buf, span, crc);
  j->copied++;
  if (!zero)
    j->bytes += span;
}

static void *
copy_worker (void *arg)
{
  struct job *j = arg;
  CLEANUP_FREE unsigned char *buf = malloc (j->src->meta.chunk_size);
  size_t i;

  if (buf == NULL) {
    problems_fail (j->problems);
    return NULL;
  }
  while (!j->stop && (i = atomic_fetch_add (&j->next, 1)) < j->chunks->len) {
    copy_chunk (j, j->chunks->ns[i], buf);
    progress_add (1);
  }
  return NULL;
}

/* The chunks SRC holds itself, within the volume (any past its end are
 * strays that nothing reads: check reports them; they are not copied).
 */
static int
list_own_chunks (struct tool_volume *src, struct chunk_list *l)
{
  const uint64_t nr = (src->meta.size + src->meta.chunk_size - 1) /
    src->meta.chunk_size;
  size_t i, k = 0;

  if (src->ops->list (src->store, chunk_list_found, l) == -1)
    return -1;
  if (l->failed) {
    tool_error ("realloc: %m");
    return -1;
  }
  for (i = 0; i < l->len; ++i)
    if (l->ns[i] < nr)
      l->ns[k++] = l->ns[i];
  if (k < l->len)
    nbdkit_debug ("%s: %zu chunk(s) past the end not copied", src->name,
                  l->len - k);
  l->len = k;
  return 0;
}

/* Copy the chunks of SRC into DST (both open).  Returns 0 (problems
 * found are in c->problems), or -1 after an error.
 */
static int
copy_chunks (struct copy *c, struct chain_volume *v, struct tool_volume *src,
             struct tool_volume *dst)
{
  struct chunk_list l = { 0 };
  struct job j = {
    .src = src, .dst = dst, .layered = v->meta.base[0] != '\0',
    .chunks = &l, .problems = &c->problems,
  };
  char label[VOLUME_NAME_MAX + 16];
  unsigned jobs = opts.jobs ? opts.jobs : 1;

  if (list_own_chunks (src, &l) == -1) {
    free (l.ns);
    return -1;
  }
  pthread_mutex_init (&j.lock, NULL);
  snprintf (label, sizeof label, "copy %s", v->name);
  progress_start (label, l.len);
  run_workers (jobs, copy_worker, &j);
  progress_end ();
  pthread_mutex_destroy (&j.lock);
  free (l.ns);
  v->chunks = j.copied;
  v->bytes = j.bytes;
  v->zeros = j.zeros;
  if (j.stop) {
    tool_error ("%s: cannot write to %s: %s", v->name, c->to->display,
                j.failure);
    return -1;
  }
  if (c->problems.failed) {
    tool_error ("out of memory");
    return -1;
  }
  return 0;
}

/* Remove the staging volume DST (open), chunks first.  Returns 0, or
 * -1 after saying what is left.
 */
static int
discard_staging (struct copy *c, struct tool_volume *dst)
{
  struct chunk_list l = { 0 };
  int r = -1;

  if (dst->ops->list (dst->store, chunk_list_found, &l) == 0 && !l.failed &&
      chunk_list_remove (dst, &l, NULL, NULL) == 0 &&
      dst->ops->sync (dst->store) == 0 &&
      c->to->ops->remove_meta (dst) == 0)
    r = 0;
  else
    tool_error ("volume '%s' is left in %s, incomplete: delete it",
                dst->name, c->to->display);
  free (l.ns);
  return r;
}

/* Create V's staging volume in DEST and open it.  It holds no chunks
 * (check_dest saw none), unless some appeared since: they would become
 * part of the copy.
 */
static int
open_staging (struct copy *c, struct chain_volume *v, struct tool_volume *dst)
{
  const struct where_ops *ops = c->to->ops;
  struct volume_meta sm;

  if (volume_meta_init (&sm, v->meta.size, v->meta.chunk_size) == -1) {
    tool_error ("cannot make metadata for '%s': %m", v->owner);
    return -1;
  }
  sm.generation = v->gen;
  if (ops->create_meta (c->to, v->owner, &sm) == -1)
    return -1;
  if (ops->open (c->to, v->owner, TOOL_OPEN_WRITE, opts.jobs, dst) == -1) {
    tool_error ("volume '%s' is left in %s, empty: delete it", v->owner,
                c->to->display);
    return -1;
  }
  if (chunk_engine_count_present (dst->engine) > 0) {
    tool_error ("chunks of volume '%s' appeared in %s during the copy",
                v->owner, c->to->display);
    if (ops->remove_meta (dst) == -1)
      tool_error ("volume '%s' is left in %s: delete it", v->owner,
                  c->to->display);
    ops->close (dst);
    return -1;
  }
  return 0;
}

/* The last step: DEST's metadata of V becomes WHERE's.  Until the
 * new metadata is in place, a failure removes the staging volume.
 */
static int
finish (struct copy *c, struct chain_volume *v, struct tool_volume *dst)
{
  const struct where_ops *ops = c->to->ops;
  const bool own = strcmp (v->owner, v->name) == 0;

  if (dst->ops->sync (dst->store) == -1 ||
      (own ? ops->rewrite_meta (dst, &v->meta) :
       ops->create_meta (c->to, v->name, &v->meta)) == -1) {
    discard_staging (c, dst);
    return -1;
  }
  if (!own && ops->remove_meta (dst) == -1) {
    tool_error ("snapshot '%s' is copied, but volume '%s' in %s is left "
                "over from the copy: delete '%s', then '%s', and copy again",
                v->name, v->owner, c->to->display, v->name, v->owner);
    return -1;
  }
  return 0;
}

/* Copy V, whose source is SRC (open read-only).  Returns EXIT_OK,
 * EXIT_PROBLEMS (in c->problems; nothing of V left in DEST) or
 * EXIT_ERROR.
 */
static int
copy_one (struct copy *c, struct chain_volume *v, struct tool_volume *src)
{
  struct tool_volume dst = { 0 };
  int r = EXIT_ERROR;

  if (strcmp (src->meta.uuid, v->meta.uuid) != 0) {
    tool_error ("volume '%s' in %s changed during the copy", v->name,
                c->from->display);
    return EXIT_ERROR;
  }
  if (open_staging (c, v, &dst) == -1)
    return EXIT_ERROR;
  if (copy_chunks (c, v, src, &dst) == -1)
    discard_staging (c, &dst);
  else if (c->problems.len) {
    /* Reported whatever becomes of what was written. */
    c->bad_volume = v->name;
    discard_staging (c, &dst);
    r = EXIT_PROBLEMS;
  }
  else if (finish (c, v, &dst) == 0) {
    v->done = true;
    r = EXIT_OK;
  }
  c->to->ops->close (&dst);
  if (!v->done)
    v->chunks = v->bytes = v->zeros = 0;  /* none of it stayed */
  return r;
}

static double
seconds_since (const struct timespec *t0)
{
  struct timespec t;

  clock_gettime (CLOCK_MONOTONIC, &t);
  return (double) (t.tv_sec - t0->tv_sec) +
    (double) (t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
report_json (const struct copy *c, int status, double secs)
{
  uint64_t chunks = 0, bytes = 0;
  unsigned i;
  size_t k;

  printf ("{\"name\":");
  json_string (stdout, c->name);
  printf (",\"from\":");
  json_string (stdout, c->from->display);
  printf (",\"to\":");
  json_string (stdout, c->to->display);
  printf (",\"ok\":%s,\"volumes\":[", status == EXIT_OK ? "true" : "false");
  for (i = 0; i < c->len; ++i) {
    const struct chain_volume *v = &c->chain[i];
    printf ("%s{\"name\":", i ? "," : "");
    json_string (stdout, v->name);
    printf (",\"copied\":%s,\"chunks\":%" PRIu64 ",\"bytes\":%" PRIu64
            ",\"zeros\":%" PRIu64 "}", v->done ? "true" : "false",
            v->chunks, v->bytes, v->zeros);
    chunks += v->chunks;
    bytes += v->bytes;
  }
  printf ("],\"chunks\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.3f"
          ",\"bad\":[", chunks, bytes, secs);
  for (k = 0; k < c->problems.len; ++k) {
    printf ("%s{\"volume\":", k ? "," : "");
    json_string (stdout, c->bad_volume);
    printf (",\"chunk\":%" PRIu64 ",\"error\":", c->problems.v[k].chunk);
    json_string (stdout, c->problems.v[k].what);
    printf ("}");
  }
  printf ("]}\n");
}

static void
report (const struct copy *c, int status, double secs)
{
  uint64_t chunks = 0, bytes = 0;
  unsigned i, copied = 0, there = 0;
  char h[32];
  size_t k;

  if (opts.json) {
    report_json (c, status, secs);
    return;
  }
  for (k = 0; k < c->problems.len; ++k)
    printf ("%s: chunk %" PRIu64 ": %s\n", c->bad_volume,
            c->problems.v[k].chunk, c->problems.v[k].what);
  for (i = 0; i < c->len; ++i) {
    chunks += c->chain[i].chunks;
    bytes += c->chain[i].bytes;
    there += c->chain[i].there;
    copied += c->chain[i].done;
  }
  if (status == EXIT_PROBLEMS) {
    printf ("copy %s to %s: %zu bad chunk%s in volume %s, which was not "
            "copied: BAD\n", c->name, c->to->display, c->problems.len,
            c->problems.len == 1 ? "" : "s", c->bad_volume);
    return;
  }
  printf ("copied %s from %s to %s: %u volume%s", c->name, c->from->display,
          c->to->display, copied, copied == 1 ? "" : "s");
  if (there)
    printf (" (%u more in %s already)", there, c->to->display);
  printf (", %" PRIu64 " chunk%s, %s in %.1f s (%.1f MiB/s), verified\n",
          chunks, chunks == 1 ? "" : "s", human_size (bytes, h, sizeof h),
          secs, secs > 0 ? (double) bytes / 1048576 / secs : 0.0);
}

/* Copy the chain, the bottom first; TOP is NAME, open in WHERE. */
static int
copy_chain (struct copy *c, struct tool_volume *top)
{
  unsigned i;
  int r = EXIT_OK;

  for (i = 0; r == EXIT_OK && i < c->len; ++i) {
    struct chain_volume *v = &c->chain[i];
    struct tool_volume base = { 0 };

    if (v->there)
      continue;
    if (i == c->len - 1) {
      r = copy_one (c, v, top);
      break;
    }
    /* Its own chunks are all the copy reads of it; its chain is held
     * (and was checked) by TOP's open.
     */
    if (c->from->ops->open (c->from, v->name,
                            TOOL_OPEN_READ | TOOL_OPEN_OWN_CHUNKS, opts.jobs,
                            &base) == -1)
      return EXIT_ERROR;
    r = copy_one (c, v, &base);
    c->from->ops->close (&base);
    if (r == EXIT_OK && !opts.json)
      printf ("copied snapshot %s: %" PRIu64 " chunk%s\n", v->name,
              v->chunks, v->chunks == 1 ? "" : "s");
  }
  return r;
}

int
cmd_copy (struct where *w, char **args)
{
  struct copy c = { .from = w, .name = args[0] };
  struct tool_volume top = { 0 };
  struct where to;
  struct timespec t0;
  int r = EXIT_ERROR;

  problems_init (&c.problems);
  if (where_open (args[1], &to) == -1) {
    where_close (&to);
    return EXIT_ERROR;
  }
  c.to = &to;
  if (strcmp (w->place, to.place) == 0) {
    tool_error ("%s and %s are the same place: copy to another directory "
                "or bucket", w->display, to.display);
    goto out;
  }
  clock_gettime (CLOCK_MONOTONIC, &t0);
  if (w->ops->open (w, c.name, TOOL_OPEN_READ, opts.jobs, &top) == -1)
    goto out;
  if (read_chain (&c, &top) == -1 || check_dest (&c) == -1)
    goto close;
  r = copy_chain (&c, &top);
  if (r != EXIT_ERROR) {
    problems_sort (&c.problems);
    report (&c, r, seconds_since (&t0));
  }
 close:
  w->ops->close (&top);
 out:
  problems_free (&c.problems);
  where_close (&to);
  return r;
}
