/* shardkit volume tool: snapshot and clone, and who depends on whom.
 * GPL-3.0-or-later.
 *
 * Both only write metadata (shardkit(1), SNAPSHOTS AND CLONES): no
 * chunk is read, copied or renamed, so they take the same time for a
 * volume of any size.
 *
 *   snapshot VOL SNAP   SNAP.meta: read-only=1, data=VOL@g (VOL's
 *                       current generation, frozen from now on), and
 *                       VOL's own base= if any, so that chains work;
 *                       then VOL.meta: generation=g+1, base=SNAP.
 *   clone SNAP NEW      NEW.meta: generation 0, base=SNAP.
 *
 * SNAP.meta is created first (atomically, failing if the name is
 * taken), VOL.meta replaced second (atomically): a crash in between
 * leaves an extra snapshot nobody uses (delete removes only its
 * metadata), never a broken volume.  VOL is opened read-write for it,
 * which takes its lock: no server has it open read-write meanwhile,
 * and the refusal names the holder.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk-engine.h"
#include "chunk-list.h"
#include "cleanup.h"
#include "overlay-store.h"
#include "commands.h"
#include "tool.h"
#include "volume-meta.h"
#include "volume-name.h"
#include "where.h"

struct dependents {
  const char *name;
  char *buf;
  size_t len, used;
  int found;
};

static int
note_dependent (void *opaque, const char *vol, const struct volume_meta *m,
                const char *why)
{
  struct dependents *d = opaque;

  /* One that cannot be read may name NAME: refuse, and say which. */
  if (m == NULL) {
    tool_error ("cannot tell whether volume '%s' needs '%s': %s",
                vol, d->name, why);
    return -1;
  }
  if (strcmp (vol, d->name) == 0 ||
      (strcmp (m->base, d->name) != 0 && strcmp (m->data, d->name) != 0))
    return 0;
  d->found++;
  if (d->used < d->len)
    d->used += (size_t) snprintf (d->buf + d->used, d->len - d->used,
                                  "%s%s (%s)", d->used ? ", " : "", vol,
                                  strcmp (m->base, d->name) == 0 ?
                                  "base" : "data");
  return 0;
}

int
volume_dependents (struct where *w, const char *name, char *buf, size_t len)
{
  struct dependents d = { .name = name, .buf = buf, .len = len };

  buf[0] = '\0';
  return where_each_volume (w, note_dependent, &d) == 0 ? d.found : -1;
}

/* NAME must be free: one line if it is not. */
static int
check_name_free (struct where *w, const char *name)
{
  struct volume_meta m;
  int r = w->ops->read_meta (w, name, &m);

  if (r == 1) {
    tool_error ("volume '%s' already exists in %s: choose another name",
                name, w->display);
    errno = EEXIST;
  }
  return r == 0 ? 0 : -1;
}

static int
check_new_name (const char *name)
{
  const char *why;

  if (!volume_name_is_valid (name, &why)) {
    tool_error ("'%s': %s", name, why);
    return -1;
  }
  return 0;
}

/* Refuse to give a volume more bases than a server opens: it would
 * have BASE, BASE's own bases, and EXTRA more.  BASE's chain is sound
 * (it has been opened).
 */
static int
check_depth (struct where *w, const char *base, unsigned extra,
             const char *what)
{
  char name[VOLUME_NAME_MAX + 1];
  struct volume_meta m;
  unsigned bases = 1 + extra;

  snprintf (name, sizeof name, "%s", base);
  for (;;) {
    int r;

    if (bases > OVERLAY_MAX_DEPTH) {
      tool_error ("%s would have more than %d bases: flatten it first",
                  what, OVERLAY_MAX_DEPTH);
      return -1;
    }
    r = w->ops->read_meta (w, name, &m);
    if (r == -1)
      return -1;
    if (r == 0 || m.base[0] == '\0')
      break;
    bases++;
    snprintf (name, sizeof name, "%s", m.base);
  }
  return 0;
}

int
cmd_snapshot (struct where *w, char **args)
{
  const char *vol = args[0], *snap = args[1];
  struct tool_volume tv = { 0 };
  struct volume_meta sm, vm;
  int r = EXIT_ERROR;

  if (check_new_name (snap) == -1)
    return EXIT_ERROR;
  if (strcmp (vol, snap) == 0) {
    tool_error ("a snapshot needs a name of its own, not '%s'", vol);
    return EXIT_ERROR;
  }
  /* Before anything is locked, so that a taken name changes nothing. */
  if (check_name_free (w, snap) == -1)
    return EXIT_ERROR;
  /* Read-write: the lock, and the whole chain checked. */
  if (w->ops->open (w, vol, TOOL_OPEN_WRITE | TOOL_OPEN_META_ONLY, 1,
                    &tv) == -1)
    return EXIT_ERROR;
  vm = tv.meta;
  if (vm.read_only) {
    tool_error ("volume '%s' is a snapshot already: clone it to get a "
                "volume that can be snapshotted", vol);
    goto out;
  }
  /* VOL gets one more base: SNAP, which takes VOL's. */
  if (vm.base[0]) {
    char what[VOLUME_NAME_MAX + 16];
    snprintf (what, sizeof what, "volume '%s'", vol);
    if (check_depth (w, vm.base, 1, what) == -1)
      goto out;
  }
  if (volume_meta_init (&sm, vm.size, vm.chunk_size) == -1) {
    tool_error ("cannot make metadata for '%s': %m", snap);
    goto out;
  }
  sm.read_only = true;
  strcpy (sm.data, vol);
  sm.data_generation = vm.generation;
  strcpy (sm.base, vm.base);
  strcpy (sm.base_uuid, vm.base_uuid);
  if (w->ops->create_meta (w, snap, &sm) == -1)
    goto out;

  vm.generation++;
  strcpy (vm.base, snap);
  strcpy (vm.base_uuid, sm.uuid);
  if (w->ops->rewrite_meta (&tv, &vm) == -1) {
    tool_error ("volume '%s' is unchanged; '%s' is left over and can be "
                "deleted", vol, snap);
    goto out;
  }
  printf ("snapshot %s of volume %s in %s: generation %" PRIu64
          " frozen, %s now writes generation %" PRIu64 "\n",
          snap, vol, w->display, sm.data_generation, vol, vm.generation);
  r = EXIT_OK;
 out:
  w->ops->close (&tv);
  return r;
}

int
cmd_clone (struct where *w, char **args)
{
  const char *snap = args[0], *name = args[1];
  struct tool_volume tv = { 0 };
  struct volume_meta m, cm;
  int r;

  if (check_new_name (name) == -1)
    return EXIT_ERROR;
  r = w->ops->read_meta (w, snap, &m);
  if (r == 0)
    tool_error ("volume '%s' does not exist in %s", snap, w->display);
  if (r != 1)
    return EXIT_ERROR;
  if (!m.read_only) {
    tool_error ("volume '%s' is not a snapshot: clone a snapshot of it "
                "(shardkit snapshot %s %s SNAP)", snap, w->display, snap);
    return EXIT_ERROR;
  }
  if (check_name_free (w, name) == -1)
    return EXIT_ERROR;
  /* Opened (read-only) to check its chain before anything depends on
   * it.
   */
  if (w->ops->open (w, snap, TOOL_OPEN_READ | TOOL_OPEN_META_ONLY, 1,
                    &tv) == -1)
    return EXIT_ERROR;
  m = tv.meta;
  w->ops->close (&tv);
  {
    char what[VOLUME_NAME_MAX + 16];
    snprintf (what, sizeof what, "clone '%s'", name);
    if (check_depth (w, snap, 0, what) == -1)
      return EXIT_ERROR;
  }

  if (volume_meta_init (&cm, m.size, m.chunk_size) == -1) {
    tool_error ("cannot make metadata for '%s': %m", name);
    return EXIT_ERROR;
  }
  strcpy (cm.base, snap);
  strcpy (cm.base_uuid, m.uuid);
  if (w->ops->create_meta (w, name, &cm) == -1)
    return EXIT_ERROR;
  printf ("cloned snapshot %s as volume %s in %s\n", snap, name, w->display);
  return EXIT_OK;
}

/* Rollback: the volume's writes since SNAP go, in one step that a
 * reader sees whole: VOL.meta moves to a fresh, empty generation (still
 * base=SNAP), then the old generation's chunks are removed.  A crash in
 * between leaves chunks nobody reads, never a half rolled back volume.
 */
int
cmd_rollback (struct where *w, char **args)
{
  const char *vol = args[0], *snap = args[1];
  struct tool_volume tv = { 0 };
  struct chunk_list l = { 0 };  /* its own chunks: its generation */
  struct volume_meta m;
  size_t removed;
  int r = EXIT_ERROR;

  if (check_new_name (snap) == -1)
    return EXIT_ERROR;
  if (w->ops->open (w, vol, TOOL_OPEN_WRITE | TOOL_OPEN_META_ONLY, 1,
                    &tv) == -1)
    return EXIT_ERROR;
  m = tv.meta;
  if (m.read_only) {
    tool_error ("volume '%s' is a snapshot: it has nothing to roll back",
                vol);
    goto out;
  }
  if (strcmp (m.base, snap) != 0) {
    if (m.base[0])
      tool_error ("volume '%s' can be rolled back to its latest snapshot "
                  "'%s' only, not '%s'", vol, m.base, snap);
    else
      tool_error ("volume '%s' has no snapshot ('%s' is not its base)",
                  vol, snap);
    goto out;
  }
  if (tv.ops->list (tv.store, chunk_list_found, &l) == -1)
    goto out;
  if (l.failed) {
    tool_error ("realloc: %m");
    goto out;
  }
  m.generation++;
  if (w->ops->rewrite_meta (&tv, &m) == -1)
    goto out;
  /* The store still names chunks by the old generation. */
  if (chunk_list_remove (&tv, &l, NULL, &removed) == -1) {
    tool_error ("volume '%s' is rolled back; %zu chunk(s) of its old "
                "generation are left over", vol, l.len - removed);
    goto out;
  }
  if (tv.ops->sync (tv.store) == -1)
    goto out;
  printf ("rolled back volume %s to snapshot %s in %s: %zu chunk%s "
          "dropped\n", vol, snap, w->display, l.len, l.len == 1 ? "" : "s");
  r = EXIT_OK;
 out:
  free (l.ns);
  w->ops->close (&tv);
  return r;
}

/* Flatten: copy every chunk the volume reads from its bases into its
 * own generation (through the engine, as a client rewriting the chunk
 * would: a whole-chunk write needs nothing from the base), then drop
 * base= from its metadata.  Interrupted, it leaves the volume as it
 * was, with some chunks copied: running it again finishes.
 */
int
cmd_flatten (struct where *w, char **args)
{
  const char *vol = args[0];
  struct tool_volume tv = { 0 };
  struct volume_meta m;
  CLEANUP_FREE void *buf = NULL;
  uint64_t n, nr, copied = 0;
  int r = EXIT_ERROR;

  if (w->ops->open (w, vol, TOOL_OPEN_WRITE, 1, &tv) == -1)
    return EXIT_ERROR;
  m = tv.meta;
  if (m.read_only || !m.base[0]) {
    tool_error ("volume '%s' %s", vol, m.read_only ?
                "is a snapshot: clone it, and flatten the clone" :
                "has no base: nothing to flatten");
    goto out;
  }
  buf = malloc (m.chunk_size);
  if (buf == NULL) {
    tool_error ("malloc: %m");
    goto out;
  }
  nr = (m.size + m.chunk_size - 1) / m.chunk_size;
  progress_start ("flatten", nr);
  for (n = 0; n < nr; ++n) {
    uint32_t span = chunk_span_of (m.size, m.chunk_size, n);
    uint64_t off = n * m.chunk_size;

    if (chunk_engine_is_present (tv.engine, n)) {
      if (chunk_engine_pread (tv.engine, buf, span, off) == -1 ||
          chunk_engine_pwrite (tv.engine, buf, span, off, false) == -1) {
        progress_end ();
        goto out;
      }
      copied++;
    }
    progress_add (1);
  }
  progress_end ();
  if (chunk_engine_flush (tv.engine) == -1)
    goto out;
  m.base[0] = '\0';
  m.base_uuid[0] = '\0';
  if (w->ops->rewrite_meta (&tv, &m) == -1)
    goto out;
  printf ("flattened volume %s in %s: %" PRIu64 " chunk%s written, no base "
          "any more\n", vol, w->display, copied, copied == 1 ? "" : "s");
  r = EXIT_OK;
 out:
  w->ops->close (&tv);
  return r;
}
