/* shardkit s3-object: where the access key comes from.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_S3_CREDENTIALS_H
#define SHARDKIT_S3_CREDENTIALS_H

struct s3_credentials {
  char *access_key;             /* NULL: anonymous, requests are unsigned */
  char *secret_key;
  char *session_token;          /* optional (temporary credentials) */
  const char *source;           /* for debug messages: where they came from */
};

/* Find the credentials, first found wins:
 *  1. ACCESS_KEY and SECRET_KEY from the command line (both or neither);
 *  2. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
 *  3. the shared credentials file ($AWS_SHARED_CREDENTIALS_FILE or
 *     ~/.aws/credentials), section PROFILE, else $AWS_PROFILE, else
 *     "default";
 *  4. none: anonymous.
 * An explicitly named profile that cannot be found is an error, as is a
 * profile with only half a key pair.  Returns 0, or -1 after nbdkit_error.
 */
extern int s3_credentials_find (const char *access_key, const char *secret_key,
                                const char *profile,
                                struct s3_credentials *out);

/* Parse the text of a shared credentials file and fill OUT from section
 * PROFILE.  Returns 1 found, 0 no such section, -1 malformed (with a
 * reason in *WHY, which never quotes a value).
 */
extern int s3_credentials_parse (const char *text, const char *profile,
                                 struct s3_credentials *out, const char **why);

/* Wipe and free. */
extern void s3_credentials_free (struct s3_credentials *c);

#endif
