/* shardkit: volume name validation.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <string.h>

#include "volume-name.h"

static bool
is_name_char (unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool
volume_name_is_valid (const char *name, const char **why)
{
  const char *dummy;
  size_t i, len;

  if (why == NULL)
    why = &dummy;
  if (name == NULL || name[0] == '\0') {
    *why = "volume name is empty";
    return false;
  }
  len = strlen (name);
  if (len > VOLUME_NAME_MAX) {
    *why = "volume name is longer than 200 bytes";
    return false;
  }
  if (name[0] == '.') {
    *why = "volume name must not start with '.'";
    return false;
  }
  for (i = 0; i < len; ++i) {
    if (!is_name_char ((unsigned char) name[i])) {
      *why = "volume name may contain only letters, digits, '.', '_' and '-'";
      return false;
    }
  }
  return true;
}

bool
volume_name_from_meta_file (const char *filename, char *out)
{
  static const char suffix[] = ".meta";
  const size_t slen = sizeof suffix - 1;
  size_t len = strlen (filename);

  if (len <= slen || strcmp (filename + len - slen, suffix) != 0)
    return false;
  len -= slen;
  if (len > VOLUME_NAME_MAX)
    return false;
  memcpy (out, filename, len);
  out[len] = '\0';
  return volume_name_is_valid (out, NULL);
}
