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

bool
volume_chunk_suffix_parse (const char *s, uint64_t *n)
{
  const char *digits = s;
  uint64_t v = 0;

  while (*s >= '0' && *s <= '9') {
    if (v > (UINT64_MAX - 9) / 10)
      return false;
    v = v * 10 + (uint64_t) (*s - '0');
    s++;
  }
  if (s == digits || (s - digits > 1 && digits[0] == '0') ||
      strcmp (s, ".chunk") != 0)
    return false;
  *n = v;
  return true;
}

/* True if the first LEN bytes of S are a valid volume name. */
static bool
stem_is_name (const char *s, size_t len)
{
  char name[VOLUME_NAME_MAX + 1];

  if (len == 0 || len > VOLUME_NAME_MAX)
    return false;
  memcpy (name, s, len);
  name[len] = '\0';
  return volume_name_is_valid (name, NULL);
}

bool
volume_chunk_name_parse (const char *filename, char *name, uint64_t *n)
{
  size_t len = strlen (filename);
  const char *p;

  /* NAME.<n>.chunk: the '.' before <n> is the second last one. */
  if (len <= 6 || strcmp (filename + len - 6, ".chunk") != 0)
    return false;
  for (p = filename + len - 7; p > filename && *p != '.'; --p)
    ;
  if (p == filename || !volume_chunk_suffix_parse (p + 1, n) ||
      !stem_is_name (filename, (size_t) (p - filename)))
    return false;
  memcpy (name, filename, (size_t) (p - filename));
  name[p - filename] = '\0';
  return true;
}

bool
volume_name_owns_file (const char *filename)
{
  static const char *const suffixes[] = { ".meta", ".lease" };
  char name[VOLUME_NAME_MAX + 1];
  size_t len = strlen (filename), i;
  uint64_t n;

  for (i = 0; i < sizeof suffixes / sizeof suffixes[0]; ++i) {
    size_t sl = strlen (suffixes[i]);
    if (len > sl && strcmp (filename + len - sl, suffixes[i]) == 0)
      return stem_is_name (filename, len - sl);
  }
  return volume_chunk_name_parse (filename, name, &n);
}
