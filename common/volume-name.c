/* shardkit: volume name validation.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
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

void
volume_chunk_stem (const char *name, uint64_t gen, char *buf, size_t len)
{
  if (gen == 0)
    snprintf (buf, len, "%s", name);
  else
    snprintf (buf, len, "%s@%" PRIu64, name, gen);
}

/* Strict decimal of LEN bytes at S: digits only, no leading zero. */
static bool
parse_decimal (const char *s, size_t len, uint64_t *out)
{
  uint64_t v = 0;
  size_t i;

  if (len == 0 || (len > 1 && s[0] == '0'))
    return false;
  for (i = 0; i < len; ++i) {
    if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
      return false;
    v = v * 10 + (uint64_t) (s[i] - '0');
  }
  *out = v;
  return true;
}

/* The first LEN bytes of S as a stem: "NAME" or "NAME@<g>", g > 0. */
static bool
stem_parse (const char *s, size_t len, char *name, uint64_t *gen)
{
  const char *at = memchr (s, '@', len);
  size_t nlen = at ? (size_t) (at - s) : len;

  *gen = 0;
  if (at && (!parse_decimal (at + 1, len - nlen - 1, gen) || *gen == 0))
    return false;
  if (!stem_is_name (s, nlen))
    return false;
  memcpy (name, s, nlen);
  name[nlen] = '\0';
  return true;
}

bool
volume_chunk_stem_parse (const char *s, char *name, uint64_t *gen)
{
  return stem_parse (s, strlen (s), name, gen);
}

bool
volume_chunk_name_parse_gen (const char *filename, char *name, uint64_t *gen,
                             uint64_t *n)
{
  size_t len = strlen (filename);
  const char *p;

  if (len <= 6 || strcmp (filename + len - 6, ".chunk") != 0)
    return false;
  for (p = filename + len - 7; p > filename && *p != '.'; --p)
    ;
  if (p == filename || !volume_chunk_suffix_parse (p + 1, n))
    return false;
  return stem_parse (filename, (size_t) (p - filename), name, gen);
}

bool
volume_name_owns_file (const char *filename)
{
  static const char *const suffixes[] = { ".meta", ".lease" };
  char name[VOLUME_NAME_MAX + 1];
  size_t len = strlen (filename), i;
  uint64_t gen, n;

  for (i = 0; i < sizeof suffixes / sizeof suffixes[0]; ++i) {
    size_t sl = strlen (suffixes[i]);
    if (len > sl && strcmp (filename + len - sl, suffixes[i]) == 0)
      return stem_is_name (filename, len - sl);
  }
  return volume_chunk_name_parse_gen (filename, name, &gen, &n);
}
