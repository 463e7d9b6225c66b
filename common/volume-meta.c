/* shardkit: parse and format NAME.meta.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "volume-meta.h"

bool
chunk_size_is_valid (uint64_t cs)
{
  return cs >= CHUNK_SIZE_MIN && cs <= CHUNK_SIZE_MAX && (cs & (cs - 1)) == 0;
}

int
volume_meta_init (struct volume_meta *m, uint64_t size, uint32_t chunk_size)
{
  unsigned char r[16];
  time_t now;
  struct tm tm;

  if (size == 0 || size > VOLUME_SIZE_MAX || !chunk_size_is_valid (chunk_size)) {
    errno = EINVAL;
    return -1;
  }
  memset (m, 0, sizeof *m);
  m->size = size;
  m->chunk_size = chunk_size;

  if (getrandom (r, sizeof r, 0) != (ssize_t) sizeof r)
    return -1;
  r[6] = (r[6] & 0x0f) | 0x40;  /* RFC 4122 version 4 */
  r[8] = (r[8] & 0x3f) | 0x80;  /* RFC 4122 variant */
  snprintf (m->uuid, sizeof m->uuid,
            "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
            "%02x%02x%02x%02x%02x%02x",
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
            r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);

  now = time (NULL);
  if (gmtime_r (&now, &tm) == NULL ||
      strftime (m->created, sizeof m->created, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    errno = EOVERFLOW;
    return -1;
  }
  return 0;
}

char *
volume_meta_format (const struct volume_meta *m)
{
  char *s = NULL;

  if (asprintf (&s,
                "# shardkit volume metadata: written once at creation, "
                "do not edit\n"
                "format=%s\n"
                "version=%d\n"
                "size=%" PRIu64 "\n"
                "chunk-size=%" PRIu32 "\n"
                "uuid=%s\n"
                "created=%s\n",
                VOLUME_META_FORMAT, VOLUME_META_VERSION,
                m->size, m->chunk_size, m->uuid, m->created) == -1)
    return NULL;
  return s;
}

static int __attribute__ ((format (printf, 3, 4)))
fail (char *err, size_t errlen, const char *fs, ...)
{
  va_list args;

  va_start (args, fs);
  vsnprintf (err, errlen, fs, args);
  va_end (args);
  return -1;
}

/* Strict unsigned decimal: digits only, no sign, no spaces, no overflow. */
static bool
parse_u64 (const char *s, uint64_t *out)
{
  uint64_t v = 0;

  if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
    return false;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9')
      return false;
    if (v > (UINT64_MAX - (uint64_t) (*s - '0')) / 10)
      return false;
    v = v * 10 + (uint64_t) (*s - '0');
  }
  *out = v;
  return true;
}

static bool
uuid_is_valid (const char *s)
{
  size_t i;

  if (strlen (s) != 36)
    return false;
  for (i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return false;
    }
    else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
               (s[i] >= 'A' && s[i] <= 'F')))
      return false;
  }
  return true;
}

int
volume_meta_check_create (const struct volume_meta *m,
                          uint64_t size, uint32_t chunk_size,
                          char *err, size_t errlen)
{
  if (size && size != m->size)
    return fail (err, errlen, "size=%" PRIu64 " does not match the volume, "
                 "which has %" PRIu64 " bytes (a volume's size is fixed at "
                 "creation)", size, m->size);
  if (chunk_size && chunk_size != m->chunk_size)
    return fail (err, errlen, "chunk-size=%" PRIu32 " does not match the "
                 "volume, which has chunk size %" PRIu32,
                 chunk_size, m->chunk_size);
  return 0;
}

enum { K_FORMAT, K_VERSION, K_SIZE, K_CHUNK_SIZE, K_UUID, K_CREATED, K_COUNT };
static const char *const keys[K_COUNT] = {
  "format", "version", "size", "chunk-size", "uuid", "created",
};

int
volume_meta_parse (const char *text, size_t len, struct volume_meta *m,
                   char *err, size_t errlen)
{
  bool seen[K_COUNT] = { false };
  char line[512];
  size_t pos = 0, lineno = 0;
  uint64_t v;
  int k;

  memset (m, 0, sizeof *m);
  if (len == 0)
    return fail (err, errlen, "metadata is empty");
  if (len > VOLUME_META_MAX_BYTES)
    return fail (err, errlen, "metadata is larger than %d bytes",
                 VOLUME_META_MAX_BYTES);
  /* Written whole with a final newline: without one it was cut short. */
  if (text[len-1] != '\n')
    return fail (err, errlen, "metadata is truncated (no final newline)");

  while (pos < len) {
    size_t end = pos, n;
    char *eq, *key, *val;

    while (end < len && text[end] != '\n')
      ++end;
    n = end - pos;
    lineno++;
    if (n >= sizeof line)
      return fail (err, errlen, "line %zu is too long", lineno);
    memcpy (line, &text[pos], n);
    line[n] = '\0';
    pos = end < len ? end + 1 : end;

    if (strlen (line) != n)
      return fail (err, errlen, "line %zu contains a NUL byte", lineno);
    for (size_t i = 0; i < n; ++i)
      if ((unsigned char) line[i] < 0x20 && line[i] != '\t' && line[i] != '\r')
        return fail (err, errlen, "line %zu contains a control byte", lineno);
    if (n > 0 && line[n-1] == '\r')
      line[--n] = '\0';

    if (n == 0 || line[0] == '#')
      continue;
    eq = strchr (line, '=');
    if (eq == NULL)
      return fail (err, errlen, "line %zu is not key=value", lineno);
    *eq = '\0';
    key = line;
    val = eq + 1;

    for (k = 0; k < K_COUNT; ++k)
      if (strcmp (key, keys[k]) == 0)
        break;
    if (k == K_COUNT)
      continue;                 /* unknown key: ignored, see header */
    if (seen[k])
      return fail (err, errlen, "key '%s' appears twice", key);
    seen[k] = true;

    switch (k) {
    case K_FORMAT:
      if (strcmp (val, VOLUME_META_FORMAT) != 0)
        return fail (err, errlen, "format is '%.64s', expected '%s'",
                     val, VOLUME_META_FORMAT);
      break;
    case K_VERSION:
      if (!parse_u64 (val, &v))
        return fail (err, errlen, "version '%.64s' is not a number", val);
      if (v != VOLUME_META_VERSION)
        return fail (err, errlen,
                     "version %" PRIu64 " is not supported (this is %d)",
                     v, VOLUME_META_VERSION);
      break;
    case K_SIZE:
      if (!parse_u64 (val, &v) || v == 0 || v > VOLUME_SIZE_MAX)
        return fail (err, errlen, "size '%.64s' is not a valid volume size",
                     val);
      m->size = v;
      break;
    case K_CHUNK_SIZE:
      if (!parse_u64 (val, &v) || !chunk_size_is_valid (v))
        return fail (err, errlen,
                     "chunk-size '%.64s' is not a power of two "
                     "from 64K to 1G", val);
      m->chunk_size = (uint32_t) v;
      break;
    case K_UUID:
      if (!uuid_is_valid (val))
        return fail (err, errlen, "uuid '%.64s' is malformed", val);
      strcpy (m->uuid, val);
      break;
    case K_CREATED:
      if (val[0] == '\0' || strlen (val) >= sizeof m->created)
        return fail (err, errlen, "created '%.64s' is malformed", val);
      strcpy (m->created, val);
      break;
    }
  }

  for (k = 0; k < K_COUNT; ++k)
    if (!seen[k])
      return fail (err, errlen, "key '%s' is missing", keys[k]);
  return 0;
}
