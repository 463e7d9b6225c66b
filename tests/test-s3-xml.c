/* Unit test: s3-object's XML parsing of S3 bodies (ListObjectsV2 pages,
 * DeleteObjects results, error documents) on well-formed, malformed and
 * hostile input (DTDs, external entities, entity expansion, wrong
 * documents), the DeleteObjects request body, and the parsing of the
 * shared credentials file.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3-credentials.h"
#include "s3-xml.h"
#include "test-util.h"

static int
parse_list (const char *xml, struct s3_list_page *p, const char **why)
{
  return s3_xml_parse_list (xml, strlen (xml), p, why);
}

static void
test_list (void)
{
  struct s3_list_page p;
  const char *why;
  const char *page1 =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>b</Name><Prefix>v/vol.</Prefix><KeyCount>3</KeyCount>"
    "<MaxKeys>3</MaxKeys><IsTruncated>true</IsTruncated>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
    "</NextContinuationToken>"
    "<Contents><Key>v/vol.0.chunk</Key><Size>4194304</Size></Contents>"
    "<Contents><Key>v/vol.1.chunk</Key><ETag>&quot;x&quot;</ETag></Contents>"
    "<Contents><Key>v/a &amp; b&lt;&#233;.meta</Key></Contents>"
    "</ListBucketResult>";
  const char *last =
    "<ListBucketResult><IsTruncated>false</IsTruncated>"
    "<Contents><Key><![CDATA[k<1>]]></Key></Contents></ListBucketResult>";

  CHECK (parse_list (page1, &p, &why) == 0);
  CHECK (p.nkeys == 3 && p.truncated);
  CHECK (p.nkeys == 3 && strcmp (p.keys[0], "v/vol.0.chunk") == 0);
  CHECK (p.nkeys == 3 && strcmp (p.keys[2], "v/a & b<\xc3\xa9.meta") == 0);
  CHECK (p.next_token &&
         strcmp (p.next_token,
                 "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=") == 0);
  s3_list_page_free (&p);

  /* No namespace (some servers), CDATA, last page. */
  CHECK (parse_list (last, &p, &why) == 0);
  CHECK (p.nkeys == 1 && !p.truncated && strcmp (p.keys[0], "k<1>") == 0);
  s3_list_page_free (&p);

  /* An empty listing. */
  CHECK (parse_list ("<ListBucketResult><IsTruncated>false</IsTruncated>"
                     "</ListBucketResult>", &p, &why) == 0 && p.nkeys == 0);
  s3_list_page_free (&p);

  /* Refused: */
  {
    const char *bad[] = {
      "",
      "not xml at all",
      "<ListBucketResult><Contents><Key>a</Key></Contents>",   /* unclosed */
      "<Error><Code>AccessDenied</Code></Error>",              /* wrong doc */
      "<ListBucketResult><IsTruncated>true</IsTruncated>"       /* no token */
      "</ListBucketResult>",
      "<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
      "<ListBucketResult><Contents><Size>1</Size></Contents>"  /* no Key */
      "</ListBucketResult>",
      /* External entity (XXE): must never read the file. */
      "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM "
      "\"file:///etc/passwd\">]><ListBucketResult><Contents><Key>&x;</Key>"
      "</Contents></ListBucketResult>",
      /* Entity expansion ("billion laughs"). */
      "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\">"
      "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
      "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
      "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>"
      "<ListBucketResult><Contents><Key>&d;</Key></Contents>"
      "</ListBucketResult>",
      /* Undefined entity. */
      "<ListBucketResult><Contents><Key>&nope;</Key></Contents>"
      "</ListBucketResult>",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
      why = NULL;
      if (parse_list (bad[i], &p, &why) == 0) {
        fprintf (stderr, "accepted bad listing #%zu\n", i);
        test_failures++;
        s3_list_page_free (&p);
      }
      else
        CHECK (why != NULL);
    }
  }
  /* A body cut short anywhere is refused or parsed, never a crash. */
  {
    size_t len = strlen (page1), i;
    for (i = 0; i < len; ++i)
      if (s3_xml_parse_list (page1, i, &p, &why) == 0)
        s3_list_page_free (&p);
  }
}

static void
test_delete (void)
{
  const char *keys[] = { "p/v.1.chunk", "p/a&b<c>\"'.chunk" };
  size_t len, nerr;
  char *body = s3_xml_delete_request (keys, 2, &len);
  char *code, *key;
  const char *why;

  CHECK (body && strlen (body) == len);
  CHECK (strstr (body, "<Quiet>true</Quiet>") != NULL);
  CHECK (strstr (body, "<Object><Key>p/v.1.chunk</Key></Object>") != NULL);
  CHECK (strstr (body, "p/a&amp;b&lt;c&gt;&quot;&apos;.chunk") != NULL);
  free (body);

  CHECK (s3_xml_parse_delete_result ("<DeleteResult xmlns=\"http://s3."
                                     "amazonaws.com/doc/2006-03-01/\"/>",
                                     76, &nerr, &code, &key, &why) == 0);
  CHECK (nerr == 0 && code == NULL && key == NULL);
  {
    const char *r =
      "<DeleteResult><Deleted><Key>a</Key></Deleted>"
      "<Error><Key>p/v.7.chunk</Key><Code>AccessDenied</Code>"
      "<Message>Access Denied</Message></Error>"
      "<Error><Key>p/v.8.chunk</Key><Code>InternalError</Code></Error>"
      "</DeleteResult>";
    CHECK (s3_xml_parse_delete_result (r, strlen (r), &nerr, &code, &key,
                                       &why) == 0);
    CHECK (nerr == 2 && code && strcmp (code, "AccessDenied") == 0 &&
           key && strcmp (key, "p/v.7.chunk") == 0);
    free (code);
    free (key);
  }
  CHECK (s3_xml_parse_delete_result ("<Error/>", 8, &nerr, &code, &key,
                                     &why) == -1);
}

static void
test_error (void)
{
  const char *e =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does "
    "not exist</Message><BucketName>nope</BucketName>"
    "<RequestId>tx0</RequestId></Error>";
  char *code, *msg;

  CHECK (s3_xml_parse_error (e, strlen (e), &code, &msg) == 0);
  CHECK (code && strcmp (code, "NoSuchBucket") == 0);
  CHECK (msg && strcmp (msg, "The specified bucket does not exist") == 0);
  free (code);
  free (msg);
  /* An HTML error page from a proxy is not an S3 error document. */
  CHECK (s3_xml_parse_error ("<html><body>502</body></html>", 29, &code,
                             &msg) == -1 && code == NULL);
  CHECK (s3_xml_parse_error ("", 0, &code, &msg) == -1);
}

static void
test_credentials (void)
{
  struct s3_credentials c = { 0 };
  const char *why;
  const char *file =
    "# comment\n"
    "[default]\n"
    "aws_access_key_id = AKIDDEFAULT\n"
    "aws_secret_access_key=secret/default\n"
    "\n"
    "[ other ]\r\n"
    "; another comment\n"
    "aws_access_key_id=AKIDOTHER\r\n"
    "aws_secret_access_key = s e c r e t \n"
    "aws_session_token = tok\n"
    "region = eu-west-1\n"
    "[half]\n"
    "aws_access_key_id=AKIDHALF\n";

  CHECK (s3_credentials_parse (file, "default", &c, &why) == 1);
  CHECK (c.access_key && strcmp (c.access_key, "AKIDDEFAULT") == 0);
  CHECK (c.secret_key && strcmp (c.secret_key, "secret/default") == 0);
  CHECK (c.session_token == NULL);
  s3_credentials_free (&c);

  CHECK (s3_credentials_parse (file, "other", &c, &why) == 1);
  CHECK (c.access_key && strcmp (c.access_key, "AKIDOTHER") == 0);
  CHECK (c.secret_key && strcmp (c.secret_key, "s e c r e t") == 0);
  CHECK (c.session_token && strcmp (c.session_token, "tok") == 0);
  s3_credentials_free (&c);

  CHECK (s3_credentials_parse (file, "missing", &c, &why) == 0);
  CHECK (s3_credentials_parse (file, "half", &c, &why) == -1 && why);
  CHECK (c.access_key == NULL);
  /* The reason never quotes the file's values. */
  CHECK (strstr (why, "AKIDHALF") == NULL);
  CHECK (s3_credentials_parse ("[default\nx=y\n", "default", &c, &why) == -1);
  CHECK (s3_credentials_parse ("[default]\njunk\n", "default", &c, &why) == -1);
}

int
main (void)
{
  s3_xml_init ();
  test_list ();
  test_delete ();
  test_error ();
  test_credentials ();
  TEST_EXIT ();
}
