/* shardkit: parsing key=value parameters (see params.h).
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

#include <nbdkit-plugin.h>

#include "duration.h"
#include "params.h"

int
param_duration (const char *key, const char *value, uint64_t *ns)
{
  const char *why;
  uint64_t r;

  if (parse_duration (value, &r, &why) == -1) {
    nbdkit_error ("%s='%s': %s", key, value, why);
    return -1;
  }
  if (r > DURATION_MAX) {
    nbdkit_error ("%s='%s': too long: at most 24h", key, value);
    return -1;
  }
  *ns = r;
  return 0;
}

int
param_unsigned (const char *key, const char *value, unsigned max,
                unsigned *u)
{
  unsigned r;

  /* nbdkit_parse_unsigned's messages start with KEY. */
  if (nbdkit_parse_unsigned (key, value, &r) == -1)
    return -1;
  if (r > max) {
    nbdkit_error ("%s='%s': at most %u", key, value, max);
    return -1;
  }
  *u = r;
  return 0;
}

int
param_bool (const char *key, const char *value, bool *b)
{
  /* nbdkit_parse_bool's spellings (nbdkit 1.32 server/public.c), but not
   * its call: its error message does not name the parameter, and a
   * second line after it would make two errors of one mistake.
   */
  static const char *const yes[] = { "1", "true", "t", "yes", "y", "on" };
  static const char *const no[] = { "0", "false", "f", "no", "n", "off" };
  size_t i;

  for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcasecmp (value, yes[i]) == 0) {
      *b = true;
      return 0;
    }
    if (strcasecmp (value, no[i]) == 0) {
      *b = false;
      return 0;
    }
  }
  nbdkit_error ("%s='%s': expected true or false", key, value);
  return -1;
}
