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

#include "cleanup.h"
#include "commands.h"
#include "tool.h"
#include "volume-meta.h"
#include "volume-name.h"
#include "where.h"

struct names {
  char **v;
  size_t len;
  bool failed;
};

static int
collect_meta (void *opaque, const struct where_entry *e)
{
  struct names *l = opaque;
  char **v;

  if (e->kind != ENTRY_META)
    return 0;
  v = realloc (l->v, (l->len + 1) * sizeof *v);
  if (v == NULL || (v[l->len] = strdup (e->volume)) == NULL) {
    if (v)
      l->v = v;
    tool_error ("malloc: %m");
    return -1;
  }
  l->v = v;
  l->len++;
  return 0;
}

int
volume_dependents (struct where *w, const char *name, char *buf, size_t len)
{
  struct names l = { 0 };
  size_t used = 0, i;
  int r, found = 0;

  buf[0] = '\0';
  r = w->ops->scan (w, NULL, collect_meta, &l);
  for (i = 0; r == 0 && i < l.len; ++i) {
    struct volume_meta m;
    int got = w->ops->read_meta (w, l.v[i], &m);

    if (got == -1) {
      r = -1;
      break;
    }
    if (got == 0 || strcmp (l.v[i], name) == 0)
      continue;
    if (strcmp (m.base, name) == 0 || strcmp (m.data, name) == 0) {
      found++;
      if (used < len)
        used += (size_t) snprintf (buf + used, len - used, "%s%s (%s)",
                                   used ? ", " : "", l.v[i],
                                   strcmp (m.base, name) == 0 ?
                                   "base" : "data");
    }
  }
  for (i = 0; i < l.len; ++i)
    free (l.v[i]);
  free (l.v);
  return r == 0 ? found : -1;
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
need_create_meta (struct where *w)
{
  if (w->ops->create_meta == NULL) {
    tool_error ("snapshots and clones are not supported in a %s yet",
                w->ops->kind);
    return -1;
  }
  return 0;
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

int
cmd_snapshot (struct where *w, char **args)
{
  const char *vol = args[0], *snap = args[1];
  struct tool_volume tv = { 0 };
  struct volume_meta sm, vm;
  int r = EXIT_ERROR;

  if (check_new_name (snap) == -1 || need_create_meta (w) == -1)
    return EXIT_ERROR;
  if (strcmp (vol, snap) == 0) {
    tool_error ("a snapshot needs a name of its own, not '%s'", vol);
    return EXIT_ERROR;
  }
  /* Before anything is locked, so that a taken name changes nothing. */
  if (check_name_free (w, snap) == -1)
    return EXIT_ERROR;
  /* Read-write: the lock, and the whole chain checked. */
  if (w->ops->open (w, vol, true, 1, &tv) == -1)
    return EXIT_ERROR;
  vm = tv.meta;
  if (vm.read_only) {
    tool_error ("volume '%s' is a snapshot already: clone it to get a "
                "volume that can be snapshotted", vol);
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

  if (check_new_name (name) == -1 || need_create_meta (w) == -1)
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
  if (w->ops->open (w, snap, false, 1, &tv) == -1)
    return EXIT_ERROR;
  m = tv.meta;
  w->ops->close (&tv);

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
