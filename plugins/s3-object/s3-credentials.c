/* shardkit s3-object: where the access key comes from.
 * GPL-3.0-or-later.
 *
 * Secrets are never printed: messages name the source and the profile,
 * never a value, and freed secrets are wiped first.
 */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "s3-credentials.h"

#define CREDENTIALS_FILE_MAX (1024 * 1024)

static void
wipe_free (char *s)
{
  if (s) {
    OPENSSL_cleanse (s, strlen (s));
    free (s);
  }
}

void
s3_credentials_free (struct s3_credentials *c)
{
  wipe_free (c->access_key);
  wipe_free (c->secret_key);
  wipe_free (c->session_token);
  c->access_key = c->secret_key = c->session_token = NULL;
}

static char *
trim (char *s)
{
  char *end;

  while (*s == ' ' || *s == '\t' || *s == '\r')
    s++;
  end = s + strlen (s);
  while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
    *--end = '\0';
  return s;
}

int
s3_credentials_parse (const char *text, const char *profile,
                      struct s3_credentials *out, const char **why)
{
  CLEANUP_FREE char *copy = strdup (text);
  char *line, *next;
  bool in_section = false, found = false;

  *why = NULL;
  if (copy == NULL) {
    *why = "out of memory";
    return -1;
  }
  for (line = copy; line; line = next) {
    char *eq, *key, *value, **slot = NULL;

    next = strchr (line, '\n');
    if (next)
      *next++ = '\0';
    line = trim (line);
    if (*line == '\0' || *line == '#' || *line == ';')
      continue;
    if (*line == '[') {
      char *close = strchr (line, ']');
      if (close == NULL) {
        *why = "a section header without ']'";
        goto err;
      }
      *close = '\0';
      in_section = strcmp (trim (line + 1), profile) == 0;
      found |= in_section;
      continue;
    }
    if (!in_section)
      continue;
    eq = strchr (line, '=');
    if (eq == NULL) {
      *why = "a line without '=' in the profile";
      goto err;
    }
    *eq = '\0';
    key = trim (line);
    value = trim (eq + 1);
    if (strcmp (key, "aws_access_key_id") == 0)
      slot = &out->access_key;
    else if (strcmp (key, "aws_secret_access_key") == 0)
      slot = &out->secret_key;
    else if (strcmp (key, "aws_session_token") == 0)
      slot = &out->session_token;
    if (slot) {
      wipe_free (*slot);
      *slot = strdup (value);
      if (*slot == NULL) {
        *why = "out of memory";
        goto err;
      }
    }
  }
  OPENSSL_cleanse (copy, strlen (text));
  if (!found)
    return 0;
  if ((out->access_key == NULL) != (out->secret_key == NULL) ||
      out->access_key == NULL) {
    *why = "the profile needs both aws_access_key_id and "
      "aws_secret_access_key";
    s3_credentials_free (out);
    return -1;
  }
  return 1;

 err:
  OPENSSL_cleanse (copy, strlen (text));
  s3_credentials_free (out);
  return -1;
}

static char *
read_file (const char *path)
{
  FILE *fp = fopen (path, "re");
  char *buf;
  size_t len;

  if (fp == NULL)
    return NULL;
  buf = malloc (CREDENTIALS_FILE_MAX + 1);
  if (buf == NULL) {
    fclose (fp);
    return NULL;
  }
  len = fread (buf, 1, CREDENTIALS_FILE_MAX, fp);
  if (ferror (fp) || !feof (fp)) {
    int e = ferror (fp) ? EIO : EFBIG;
    fclose (fp);
    free (buf);
    errno = e;
    return NULL;
  }
  fclose (fp);
  buf[len] = '\0';
  return buf;
}

static int
from_file (const char *profile_param, struct s3_credentials *out)
{
  const char *path = getenv ("AWS_SHARED_CREDENTIALS_FILE");
  const char *profile = profile_param;
  CLEANUP_FREE char *home_path = NULL;
  /* A missing ~/.aws/credentials just means "no credentials here"; a file
   * or profile that was asked for by name must exist.
   */
  bool named = (path && *path) || (profile_param && *profile_param) ||
    (getenv ("AWS_PROFILE") && *getenv ("AWS_PROFILE"));
  char *text;
  const char *why;
  int r;

  if (profile == NULL || *profile == '\0')
    profile = getenv ("AWS_PROFILE");
  if (profile == NULL || *profile == '\0')
    profile = "default";
  if (path == NULL || *path == '\0') {
    const char *home = getenv ("HOME");
    if (home == NULL || *home == '\0')
      return 0;
    if (asprintf (&home_path, "%s/.aws/credentials", home) == -1) {
      home_path = NULL;
      nbdkit_error ("asprintf: %m");
      return -1;
    }
    path = home_path;
  }
  text = read_file (path);
  if (text == NULL) {
    if (errno == ENOENT && !named)
      return 0;
    nbdkit_error ("credentials file %s: %m", path);
    return -1;
  }
  r = s3_credentials_parse (text, profile, out, &why);
  OPENSSL_cleanse (text, strlen (text));
  free (text);
  if (r == -1) {
    nbdkit_error ("credentials file %s, profile '%s': %s",
                  path, profile, why);
    errno = EINVAL;
    return -1;
  }
  if (r == 0) {
    /* Asking for a profile by name and not finding it is a mistake;
     * no "default" profile just means "look further".
     */
    if ((profile_param && *profile_param) || getenv ("AWS_PROFILE")) {
      nbdkit_error ("credentials file %s has no profile '%s'",
                    path, profile);
      errno = EINVAL;
      return -1;
    }
    return 0;
  }
  out->source = "the shared credentials file";
  nbdkit_debug ("s3: credentials from %s, profile '%s'", path, profile);
  return 1;
}

int
s3_credentials_find (const char *access_key, const char *secret_key,
                     const char *profile, struct s3_credentials *out)
{
  const char *env_id = getenv ("AWS_ACCESS_KEY_ID");
  const char *env_secret = getenv ("AWS_SECRET_ACCESS_KEY");
  const char *env_token = getenv ("AWS_SESSION_TOKEN");
  int r;

  memset (out, 0, sizeof *out);
  if (access_key || secret_key) {
    if (access_key == NULL || secret_key == NULL) {
      nbdkit_error ("access-key= and secret-key= must be given together");
      errno = EINVAL;
      return -1;
    }
    out->access_key = strdup (access_key);
    out->secret_key = strdup (secret_key);
    out->source = "the command line";
    if (out->access_key == NULL || out->secret_key == NULL)
      goto nomem;
  }
  else if (env_id && *env_id && env_secret && *env_secret) {
    out->access_key = strdup (env_id);
    out->secret_key = strdup (env_secret);
    if (env_token && *env_token)
      out->session_token = strdup (env_token);
    out->source = "the environment";
    if (out->access_key == NULL || out->secret_key == NULL ||
        (env_token && *env_token && out->session_token == NULL))
      goto nomem;
  }
  else {
    r = from_file (profile, out);
    if (r == -1)
      return -1;
    if (r == 0) {
      if (profile && *profile) {
        nbdkit_error ("profile=%s: no shared credentials file found", profile);
        errno = EINVAL;
        return -1;
      }
      out->source = "nowhere (anonymous, unsigned requests)";
    }
  }
  nbdkit_debug ("s3: credentials from %s", out->source);
  return 0;

 nomem:
  nbdkit_error ("strdup: %m");
  s3_credentials_free (out);
  return -1;
}
