/* shardkit s3-object: the XML bodies of S3, parsed with libxml2.
 * GPL-3.0-or-later.
 *
 * Elements are matched by local name, ignoring namespaces: AWS puts its
 * documents in the 2006-03-01 namespace, some servers put them in none.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "cleanup.h"
#include "s3-xml.h"

/* Larger bodies are not S3 listings: a 1000-key page of 1 KiB keys is
 * about 1.3 MB.
 */
#define XML_BODY_MAX (16 * 1024 * 1024)

void
s3_xml_init (void)
{
  xmlInitParser ();
}

static xmlDocPtr
parse (const char *body, size_t len, const char *root, const char **why)
{
  xmlDocPtr doc;
  xmlNodePtr r;

  if (len == 0) {
    *why = "empty body";
    return NULL;
  }
  if (len > XML_BODY_MAX || len > INT_MAX) {
    *why = "body too large";
    return NULL;
  }
  doc = xmlReadMemory (body, (int) len, NULL, NULL,
                       XML_PARSE_NONET | XML_PARSE_NOERROR |
                       XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
  if (doc == NULL) {
    *why = "malformed XML";
    return NULL;
  }
  if (doc->intSubset || doc->extSubset) {
    *why = "XML with a document type declaration (refused)";
    xmlFreeDoc (doc);
    return NULL;
  }
  r = xmlDocGetRootElement (doc);
  if (r == NULL || strcmp ((const char *) r->name, root) != 0) {
    *why = "unexpected XML document";
    xmlFreeDoc (doc);
    return NULL;
  }
  return doc;
}

/* The text of an element: its text children only (no entity
 * references, which cannot occur without a DTD anyway).
 */
static char *
text_of (xmlNodePtr n)
{
  size_t len = 0;
  xmlNodePtr c;
  char *out;

  for (c = n->children; c; c = c->next)
    if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
      len += strlen ((const char *) c->content);
  out = malloc (len + 1);
  if (out == NULL)
    return NULL;
  out[0] = '\0';
  len = 0;
  for (c = n->children; c; c = c->next)
    if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
      size_t l = strlen ((const char *) c->content);
      memcpy (out + len, c->content, l);
      len += l;
    }
  out[len] = '\0';
  return out;
}

static bool
is (xmlNodePtr n, const char *name)
{
  return n->type == XML_ELEMENT_NODE && strcmp ((const char *) n->name, name) == 0;
}

static xmlNodePtr
child (xmlNodePtr n, const char *name)
{
  xmlNodePtr c;

  for (c = n->children; c; c = c->next)
    if (is (c, name))
      return c;
  return NULL;
}

int
s3_xml_parse_list (const char *body, size_t len, struct s3_list_page *out,
                   const char **why)
{
  CLEANUP_XML_DOC_FREE xmlDocPtr doc = NULL;
  xmlNodePtr root, c, k;
  size_t n = 0;

  memset (out, 0, sizeof *out);
  doc = parse (body, len, "ListBucketResult", why);
  if (doc == NULL)
    return -1;
  root = xmlDocGetRootElement (doc);
  for (c = root->children; c; c = c->next)
    if (is (c, "Contents"))
      n++;
  out->keys = calloc (n + 1, sizeof *out->keys);
  out->sizes = calloc (n + 1, sizeof *out->sizes);
  if (out->keys == NULL || out->sizes == NULL)
    goto nomem;

  for (c = root->children; c; c = c->next) {
    if (is (c, "Contents")) {
      k = child (c, "Key");
      if (k == NULL) {
        *why = "a Contents element without a Key";
        s3_list_page_free (out);
        return -1;
      }
      out->keys[out->nkeys] = text_of (k);
      if (out->keys[out->nkeys] == NULL)
        goto nomem;
      out->sizes[out->nkeys] = UINT64_MAX;
      k = child (c, "Size");
      if (k) {
        CLEANUP_FREE char *t = text_of (k);
        char *end;
        unsigned long long v;
        if (t == NULL)
          goto nomem;
        errno = 0;
        v = strtoull (t, &end, 10);
        if (errno == 0 && end != t && *end == '\0' && t[0] != '-')
          out->sizes[out->nkeys] = v;
      }
      out->nkeys++;
    }
    else if (is (c, "IsTruncated")) {
      CLEANUP_FREE char *t = text_of (c);
      if (t == NULL)
        goto nomem;
      if (strcmp (t, "true") == 0)
        out->truncated = true;
      else if (strcmp (t, "false") == 0)
        out->truncated = false;
      else {
        *why = "IsTruncated is neither true nor false";
        s3_list_page_free (out);
        return -1;
      }
    }
    else if (is (c, "NextContinuationToken")) {
      free (out->next_token);
      out->next_token = text_of (c);
      if (out->next_token == NULL)
        goto nomem;
    }
  }
  if (out->truncated && (out->next_token == NULL || out->next_token[0] == '\0')) {
    *why = "a truncated listing without NextContinuationToken";
    s3_list_page_free (out);
    return -1;
  }
  return 0;

 nomem:
  *why = "out of memory";
  s3_list_page_free (out);
  return -1;
}

void
s3_list_page_free (struct s3_list_page *p)
{
  size_t i;

  if (p->keys)
    for (i = 0; i < p->nkeys; ++i)
      free (p->keys[i]);
  free (p->keys);
  free (p->sizes);
  free (p->next_token);
  memset (p, 0, sizeof *p);
}

static void
xml_escape (FILE *fp, const char *s)
{
  for (; *s; ++s) {
    switch (*s) {
    case '&': fputs ("&amp;", fp); break;
    case '<': fputs ("&lt;", fp); break;
    case '>': fputs ("&gt;", fp); break;
    case '"': fputs ("&quot;", fp); break;
    case '\'': fputs ("&apos;", fp); break;
    default: fputc (*s, fp);
    }
  }
}

char *
s3_xml_delete_request (const char *const *keys, size_t n, size_t *len)
{
  char *text = NULL;
  FILE *fp = open_memstream (&text, len);
  size_t i;

  if (fp == NULL)
    return NULL;
  fputs ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
         "<Quiet>true</Quiet>", fp);
  for (i = 0; i < n; ++i) {
    fputs ("<Object><Key>", fp);
    xml_escape (fp, keys[i]);
    fputs ("</Key></Object>", fp);
  }
  fputs ("</Delete>", fp);
  if (fclose (fp) != 0) {
    free (text);
    errno = ENOMEM;
    return NULL;
  }
  return text;
}

int
s3_xml_parse_delete_result (const char *body, size_t len, size_t *nerrors,
                            char **code, char **key, const char **why)
{
  CLEANUP_XML_DOC_FREE xmlDocPtr doc = NULL;
  xmlNodePtr c, e;

  *nerrors = 0;
  *code = *key = NULL;
  doc = parse (body, len, "DeleteResult", why);
  if (doc == NULL)
    return -1;
  for (c = xmlDocGetRootElement (doc)->children; c; c = c->next) {
    if (!is (c, "Error"))
      continue;
    if ((*nerrors)++ > 0)
      continue;
    if ((e = child (c, "Code")) != NULL)
      *code = text_of (e);
    if ((e = child (c, "Key")) != NULL)
      *key = text_of (e);
  }
  return 0;
}

int
s3_xml_parse_error (const char *body, size_t len, char **code, char **message)
{
  CLEANUP_XML_DOC_FREE xmlDocPtr doc = NULL;
  xmlNodePtr e;
  const char *why;

  *code = *message = NULL;
  doc = parse (body, len, "Error", &why);
  if (doc == NULL)
    return -1;
  e = child (xmlDocGetRootElement (doc), "Code");
  if (e)
    *code = text_of (e);
  e = child (xmlDocGetRootElement (doc), "Message");
  if (e)
    *message = text_of (e);
  return 0;
}
