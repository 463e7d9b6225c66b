/* shardkit: parse and format NAME.meta.
 * GPL-3.0-or-later.
 *
 * The checksum line.  NAME.meta ends with
 *
 *   checksum=crc32c:XXXXXXXX
 *
 * 8 lowercase hex digits: the CRC32C (Castagnoli) of every byte of the
 * lines before it, newlines included.  Every file written since has it,
 * and a reader refuses a mismatch, a malformed checksum line, or anything
 * after it: a size changed by a stray edit or a bit flip at rest would
 * otherwise serve a different disk without a word.
 *
 * Files written before (no checksum line) are still read as they always
 * were: existing volumes keep working, in both plugins, and nothing
 * rewrites them (NAME.meta is written once).  Such a file cannot end with
 * a comment or an unknown key, though: the old writer never put either
 * after created=, and a damaged checksum line looks exactly like that
 * ("#hecksum=..." or "checksun=..." are one changed byte away).
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

#include "crc32c.h"
#include "volume-meta.h"

#define CHECKSUM_KEY "checksum"
#define CHECKSUM_PREFIX CHECKSUM_KEY "=crc32c:"
/* The line: the prefix, 8 hex digits, the newline. */
#define CHECKSUM_LINE_LEN (sizeof CHECKSUM_PREFIX - 1 + 8 + 1)

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

bool
volume_meta_is_layered (const struct volume_meta *m)
{
  return m->generation > 0 || m->read_only || m->data[0] || m->base[0] ||
    m->set_size > 0;
}

char *
volume_meta_format (const struct volume_meta *m)
{
  char *s = NULL, *t = NULL;
  char gen[48] = "", ro[16] = "", data[VOLUME_CHUNK_STEM_MAX + 16] = "";
  char base[VOLUME_NAME_MAX + 16] = "", buuid[64] = "", set[96] = "";
  const bool layered = volume_meta_is_layered (m);
  int len;

  /* Only the keys that apply, so that a plain volume stays version 1. */
  if (m->generation)
    snprintf (gen, sizeof gen, "generation=%" PRIu64 "\n", m->generation);
  if (m->read_only)
    snprintf (ro, sizeof ro, "read-only=1\n");
  if (m->data[0]) {
    char stem[VOLUME_CHUNK_STEM_MAX];
    volume_chunk_stem (m->data, m->data_generation, stem, sizeof stem);
    snprintf (data, sizeof data, "data=%s\n", stem);
  }
  if (m->base[0]) {
    snprintf (base, sizeof base, "base=%s\n", m->base);
    snprintf (buuid, sizeof buuid, "base-uuid=%s\n", m->base_uuid);
  }
  if (m->set_size && strcmp (m->redundancy, VOLUME_REDUNDANCY_EC) == 0)
    snprintf (set, sizeof set, "redundancy=ec:%" PRIu32 "+%" PRIu32 "\n"
              "set-size=%" PRIu32 "\nset-index=%" PRIu32 "\n",
              m->ec_k, m->ec_m, m->set_size, m->set_index);
  else if (m->set_size)
    snprintf (set, sizeof set, "redundancy=%s\nset-size=%" PRIu32 "\n"
              "set-index=%" PRIu32 "\n", m->redundancy, m->set_size,
              m->set_index);

  len = asprintf (&s,
                "# shardkit volume metadata: written once at creation, "
                "do not edit\n"
                "format=%s\n"
                "version=%d\n"
                "size=%" PRIu64 "\n"
                "chunk-size=%" PRIu32 "\n"
                "uuid=%s\n"
                "created=%s\n"
                "%s%s%s%s%s%s",
                VOLUME_META_FORMAT,
                m->ec_k ? VOLUME_META_VERSION_EC :
                layered ? VOLUME_META_VERSION_LAYERED : VOLUME_META_VERSION,
                m->size, m->chunk_size, m->uuid, m->created,
                gen, ro, data, base, buuid, set);
  if (len == -1)
    return NULL;
  if (asprintf (&t, "%s" CHECKSUM_PREFIX "%08" PRIx32 "\n",
                s, crc32c (0, s, (size_t) len)) == -1)
    t = NULL;
  free (s);
  return t;
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
is_lower_hex (char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* If the last line of the LEN bytes at TEXT (which end with a newline)
 * is a checksum line, check it.  Sets *BODY_LEN to the length of what
 * precedes the checksum line, or LEN when there is none.
 */
static int
check_checksum (const char *text, size_t len, size_t *body_len,
                char *err, size_t errlen)
{
  size_t start = len - 1;
  uint32_t said = 0, got;
  size_t i;

  while (start > 0 && text[start-1] != '\n')
    --start;
  *body_len = len;
  if (len - start < sizeof CHECKSUM_KEY ||
      memcmp (&text[start], CHECKSUM_KEY "=", sizeof CHECKSUM_KEY) != 0)
    return 0;                   /* no checksum: the format before it */

  if (len - start != CHECKSUM_LINE_LEN ||
      memcmp (&text[start], CHECKSUM_PREFIX, sizeof CHECKSUM_PREFIX - 1) != 0)
    return fail (err, errlen, "the checksum line is malformed (expected "
                 "'" CHECKSUM_PREFIX "' and 8 lowercase hex digits)");
  for (i = start + sizeof CHECKSUM_PREFIX - 1; i < len - 1; ++i) {
    if (!is_lower_hex (text[i]))
      return fail (err, errlen, "the checksum line is malformed (expected "
                   "'" CHECKSUM_PREFIX "' and 8 lowercase hex digits)");
    said = (said << 4) |
      (uint32_t) (text[i] <= '9' ? text[i] - '0' : text[i] - 'a' + 10);
  }
  got = crc32c (0, text, start);
  if (said != got)
    return fail (err, errlen, "checksum mismatch: the metadata says crc32c "
                 "%08" PRIx32 ", its contents give %08" PRIx32 " (edited "
                 "by hand or damaged)", said, got);
  *body_len = start;
  return 0;
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

enum { K_FORMAT, K_VERSION, K_SIZE, K_CHUNK_SIZE, K_UUID, K_CREATED,
       K_REQUIRED,
       /* Optional, version 2 only. */
       K_GENERATION = K_REQUIRED, K_READ_ONLY, K_DATA, K_BASE, K_BASE_UUID,
       K_REDUNDANCY, K_SET_SIZE, K_SET_INDEX,
       K_COUNT };
static const char *const keys[K_COUNT] = {
  "format", "version", "size", "chunk-size", "uuid", "created",
  "generation", "read-only", "data", "base", "base-uuid",
  "redundancy", "set-size", "set-index",
};

int
volume_meta_parse (const char *text, size_t len, struct volume_meta *m,
                   char *err, size_t errlen)
{
  bool seen[K_COUNT] = { false };
  bool last_known = false;      /* the last line is a known key */
  bool has_checksum;
  char line[512];
  size_t pos = 0, lineno = 0, body_len;
  uint64_t v, version = 0;
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
  /* Before the keys: a mismatch explains a bad value better than the
   * value's own complaint would.
   */
  if (check_checksum (text, len, &body_len, err, errlen) == -1)
    return -1;
  has_checksum = body_len < len;
  len = body_len;

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

    last_known = false;
    if (n == 0 || line[0] == '#')
      continue;
    eq = strchr (line, '=');
    if (eq == NULL)
      return fail (err, errlen, "line %zu is not key=value", lineno);
    *eq = '\0';
    key = line;
    val = eq + 1;

    /* The checksum line was the last line, and is no longer in LEN. */
    if (strcmp (key, CHECKSUM_KEY) == 0)
      return fail (err, errlen, "line %zu: the checksum line is not the "
                   "last line", lineno);
    for (k = 0; k < K_COUNT; ++k)
      if (strcmp (key, keys[k]) == 0)
        break;
    if (k == K_COUNT)
      continue;                 /* unknown key: ignored, see header */
    last_known = true;
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
      if (v < VOLUME_META_VERSION || v > VOLUME_META_VERSION_EC)
        return fail (err, errlen,
                     "version %" PRIu64 " is not supported: this shardkit "
                     "reads versions %d to %d (a newer shardkit wrote it)",
                     v, VOLUME_META_VERSION, VOLUME_META_VERSION_EC);
      version = v;
      break;
    case K_GENERATION:
      if (!parse_u64 (val, &v) || v == 0)
        return fail (err, errlen, "generation '%.64s' is not a number "
                     "above 0", val);
      m->generation = v;
      break;
    case K_READ_ONLY:
      if (strcmp (val, "1") != 0)
        return fail (err, errlen, "read-only '%.64s' is not 1", val);
      m->read_only = true;
      break;
    case K_DATA: {
      if (!volume_chunk_stem_parse (val, m->data, &m->data_generation))
        return fail (err, errlen, "data '%.64s' is not VOLUME or "
                     "VOLUME@GENERATION", val);
      break;
    }
    case K_BASE:
      if (!volume_name_is_valid (val, NULL))
        return fail (err, errlen, "base '%.64s' is not a volume name", val);
      strcpy (m->base, val);
      break;
    case K_BASE_UUID:
      if (!uuid_is_valid (val))
        return fail (err, errlen, "base-uuid '%.64s' is malformed", val);
      strcpy (m->base_uuid, val);
      break;
    case K_REDUNDANCY: {
      unsigned ek, em;
      char tail, canon[32];

      if (strcmp (val, VOLUME_REDUNDANCY_MIRROR) == 0) {
        strcpy (m->redundancy, val);
        break;
      }
      /* Written back the same, or refused (no signs, spaces, zeros). */
      if (sscanf (val, "ec:%u+%u%c", &ek, &em, &tail) != 2 ||
          snprintf (canon, sizeof canon, "ec:%u+%u", ek, em) < 0 ||
          strcmp (canon, val) != 0 || ek < 1 || em < 1 || ek + em > VOLUME_SET_MAX)
        return fail (err, errlen, "redundancy '%.64s' is not supported: "
                     "this shardkit knows '" VOLUME_REDUNDANCY_MIRROR "' and "
                     "'ec:K+M' with K, M >= 1 and K+M <= %d (a newer "
                     "shardkit wrote it?)", val, VOLUME_SET_MAX);
      strcpy (m->redundancy, VOLUME_REDUNDANCY_EC);
      m->ec_k = ek;
      m->ec_m = em;
      break;
    }
    case K_SET_SIZE:
      if (!parse_u64 (val, &v) || v < 2 || v > VOLUME_SET_MAX)
        return fail (err, errlen, "set-size '%.64s' is not a number from 2 "
                     "to %d", val, VOLUME_SET_MAX);
      m->set_size = (uint32_t) v;
      break;
    case K_SET_INDEX:
      if (!parse_u64 (val, &v) || v >= VOLUME_SET_MAX)
        return fail (err, errlen, "set-index '%.64s' is not a number from 0 "
                     "to %d", val, VOLUME_SET_MAX - 1);
      m->set_index = (uint32_t) v;
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

  for (k = 0; k < K_REQUIRED; ++k)
    if (!seen[k])
      return fail (err, errlen, "key '%s' is missing", keys[k]);
  for (k = K_REQUIRED; k < K_COUNT; ++k)
    if (seen[k] && version < VOLUME_META_VERSION_LAYERED)
      return fail (err, errlen, "key '%s' needs version %d", keys[k],
                   VOLUME_META_VERSION_LAYERED);
  if (seen[K_BASE] != seen[K_BASE_UUID])
    return fail (err, errlen, "base and base-uuid go together");
  if (seen[K_REDUNDANCY] != seen[K_SET_SIZE] ||
      seen[K_REDUNDANCY] != seen[K_SET_INDEX])
    return fail (err, errlen, "redundancy, set-size and set-index go "
                 "together");
  if (m->set_size && m->set_index >= m->set_size)
    return fail (err, errlen, "set-index %" PRIu32 " is not below set-size "
                 "%" PRIu32, m->set_index, m->set_size);
  if (m->ec_k && version != VOLUME_META_VERSION_EC)
    return fail (err, errlen, "redundancy ec needs version %d",
                 VOLUME_META_VERSION_EC);
  if (!m->ec_k && version == VOLUME_META_VERSION_EC)
    return fail (err, errlen, "version %d without redundancy ec:K+M",
                 VOLUME_META_VERSION_EC);
  if (m->ec_k && m->set_size != m->ec_k + m->ec_m)
    return fail (err, errlen, "set-size %" PRIu32 " is not K+M of "
                 "redundancy ec:%" PRIu32 "+%" PRIu32, m->set_size,
                 m->ec_k, m->ec_m);
  if (m->data[0] && !m->read_only)
    return fail (err, errlen, "data= is for snapshots (read-only=1) only");
  if (version >= VOLUME_META_VERSION_LAYERED && !volume_meta_is_layered (m))
    return fail (err, errlen, "version %d without any of its keys",
                 VOLUME_META_VERSION_LAYERED);
  if (!has_checksum && !last_known)
    return fail (err, errlen, "no checksum line, and the last line is not "
                 "a known key (a damaged checksum line?)");
  return 0;
}
