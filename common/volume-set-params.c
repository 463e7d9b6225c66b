/* shardkit: the parameters of a set of locations (redundancy= and the
 * rest), parsed once for both plugins.  GPL-3.0-or-later.  See
 * volume-set.h.  Apart from volume-set.c so that the volume tool, which
 * builds its sets itself, does not link nbdkit's parsers.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "ec-codec.h"
#include "params.h"
#include "volume-set.h"

/* redundancy=ec:K+M */
static int
parse_ec (struct volume_set_params *p, const char *value)
{
  unsigned k, m;
  char tail, canon[32];

  if (sscanf (value, "ec:%u+%u%c", &k, &m, &tail) != 2 ||
      snprintf (canon, sizeof canon, "ec:%u+%u", k, m) < 0 ||
      strcmp (canon, value) != 0) {
    nbdkit_error ("redundancy=%s: expected mirror or ec:K+M (for example "
                  "ec:4+2)", value);
    return -1;
  }
  if (k < 1 || m < 1 || k + m > VOLUME_SET_MAX_LOCATIONS) {
    nbdkit_error ("redundancy=%s: K and M must be at least 1 and K+M at "
                  "most %d (one location per fragment)", value,
                  VOLUME_SET_MAX_LOCATIONS);
    return -1;
  }
  p->ec_k = k;
  p->ec_m = m;
  return 0;
}

int
volume_set_config (struct volume_set_params *p, const char *key,
                   const char *value)
{
  if (strcmp (key, "redundancy") == 0) {
    if (strcmp (value, "mirror") == 0)
      p->ec_k = p->ec_m = 0;
    else if (parse_ec (p, value) == -1)
      return -1;
    p->redundancy_given = true;
  }
  else if (strcmp (key, "ec-min-write") == 0) {
    if (param_unsigned ("ec-min-write", value, EC_MAX_K + EC_MAX_M,
                        &p->ec_min_write) == -1)
      return -1;
    if (p->ec_min_write == 0) {
      nbdkit_error ("ec-min-write=0: a write must reach at least K "
                    "locations");
      return -1;
    }
  }
  else if (strcmp (key, "mirror-mode") == 0) {
    if (strcmp (value, "sync") == 0)
      p->mode = MIRROR_SYNC;
    else if (strcmp (value, "async") == 0)
      p->mode = MIRROR_ASYNC;
    else {
      nbdkit_error ("mirror-mode=%s: expected sync or async", value);
      return -1;
    }
  }
  else if (strcmp (key, "write-quorum") == 0) {
    if (param_unsigned ("write-quorum", value, VOLUME_SET_MAX_LOCATIONS,
                        &p->write_quorum) == -1)
      return -1;
    if (p->write_quorum == 0) {
      nbdkit_error ("write-quorum=0: at least 1 location must take a write");
      return -1;
    }
  }
  else if (strcmp (key, "durability") == 0) {
    if (strcmp (value, "all") == 0)
      p->durable_all = true;
    else if (strcmp (value, "first") == 0)
      p->durable_all = false;
    else {
      nbdkit_error ("durability=%s: expected first or all", value);
      return -1;
    }
  }
  else if (strcmp (key, "probe-interval") == 0) {
    if (param_duration ("probe-interval", value,
                        &p->probe_interval_ns) == -1)
      return -1;
    if (p->probe_interval_ns == 0) {
      nbdkit_error ("probe-interval=%s: must be above 0", value);
      return -1;
    }
  }
  else if (strcmp (key, "mirror-threads") == 0) {
    if (param_unsigned ("mirror-threads", value, 64, &p->threads) == -1)
      return -1;
    p->threads_given = true;
  }
  else
    return 0;
  return 1;
}

int
volume_set_config_complete (struct volume_set_params *p,
                            const char *loc_param)
{
  /* The set's parameters mean nothing for one location: say so rather
   * than ignore them.
   */
  if (p->nloc == 1 &&
      (p->redundancy_given || p->write_quorum || p->mode != MIRROR_SYNC ||
       p->durable_all || p->threads_given || p->ec_min_write)) {
    nbdkit_error ("redundancy=, mirror-mode=, write-quorum=, durability=, "
                  "ec-min-write= and mirror-threads= are for several %s "
                  "(a set of locations)", loc_param);
    return -1;
  }
  if (p->ec_k) {
    if (p->nloc != p->ec_k + p->ec_m) {
      nbdkit_error ("redundancy=ec:%u+%u needs %u %s (one per fragment), "
                    "not %u", p->ec_k, p->ec_m, p->ec_k + p->ec_m,
                    loc_param, p->nloc);
      return -1;
    }
    if (p->write_quorum || p->mode != MIRROR_SYNC || p->durable_all) {
      nbdkit_error ("write-quorum=, mirror-mode= and durability= are for "
                    "redundancy=mirror (erasure coding has ec-min-write=)");
      return -1;
    }
    if (p->ec_min_write &&
        (p->ec_min_write < p->ec_k || p->ec_min_write > p->ec_k + p->ec_m)) {
      nbdkit_error ("ec-min-write=%u: must be from K (%u) to K+M (%u)",
                    p->ec_min_write, p->ec_k, p->ec_k + p->ec_m);
      return -1;
    }
  }
  else if (p->ec_min_write) {
    nbdkit_error ("ec-min-write= is for redundancy=ec:K+M");
    return -1;
  }
  if (p->write_quorum > p->nloc) {
    nbdkit_error ("write-quorum=%u: there are only %u locations (%s)",
                  p->write_quorum, p->nloc, loc_param);
    return -1;
  }
  if (p->mode == MIRROR_ASYNC && p->write_quorum > 1) {
    nbdkit_error ("write-quorum=%u: mirror-mode=async acknowledges a write "
                  "once it is on the first location", p->write_quorum);
    return -1;
  }
  if (p->durable_all && p->mode != MIRROR_ASYNC) {
    nbdkit_error ("durability=all is for mirror-mode=async (a sync mirror "
                  "flushes every location anyway)");
    return -1;
  }
  /* Side-by-side writes: one thread per other location for each of a
   * few requests at once (see bench: measured against serial writes).
   */
  if (!p->threads_given)
    p->threads = p->nloc > 1 ? 4 * (p->nloc - 1) : 0;
  return 0;
}
