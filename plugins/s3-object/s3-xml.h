/* shardkit s3-object: the XML bodies of S3 (ListObjectsV2, DeleteObjects,
 * error responses), parsed with libxml2.
 * GPL-3.0-or-later.
 *
 * The parsers take untrusted bytes: no network access, no DTDs (a
 * document with one is refused, which rules out entity expansion
 * attacks), and every failure says why in a static string.
 */
#ifndef SHARDKIT_S3_XML_H
#define SHARDKIT_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Call once before any thread parses (libxml2's global init). */
extern void s3_xml_init (void);

struct s3_list_page {
  char **keys;
  uint64_t *sizes;              /* each key's Size, UINT64_MAX if none */
  size_t nkeys;
  bool truncated;
  char *next_token;             /* NextContinuationToken, or NULL */
};

/* ListBucketResult of ListObjectsV2.  Returns 0, or -1 with *WHY. */
extern int s3_xml_parse_list (const char *body, size_t len,
                              struct s3_list_page *out, const char **why);
extern void s3_list_page_free (struct s3_list_page *p);

/* The body of a quiet DeleteObjects request for the N keys.  Returns
 * a malloc'd string (length in *LEN) or NULL with errno set.
 */
extern char *s3_xml_delete_request (const char *const *keys, size_t n,
                                    size_t *len);

/* DeleteResult: *NERRORS = the number of <Error> entries; the first one's
 * Code and Key are returned (malloc'd) in *CODE and *KEY.  Returns 0, or
 * -1 with *WHY if the body is not a DeleteResult.
 */
extern int s3_xml_parse_delete_result (const char *body, size_t len,
                                       size_t *nerrors, char **code,
                                       char **key, const char **why);

/* An <Error> body: Code and Message (malloc'd, NULL when absent).
 * Returns 0, or -1 if the body is not an S3 error document.
 */
extern int s3_xml_parse_error (const char *body, size_t len,
                               char **code, char **message);

#endif
