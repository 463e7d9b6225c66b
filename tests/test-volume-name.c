/* Unit test: volume name validation.  GPL-3.0-or-later. */
#include <config.h>

#include <string.h>

#include "test-util.h"
#include "volume-name.h"

int
main (void)
{
  char long_name[300], out[VOLUME_NAME_MAX + 1];
  const char *why = NULL;

  CHECK (volume_name_is_valid ("disk0", NULL));
  CHECK (volume_name_is_valid ("my-image_1.v2", NULL));
  CHECK (volume_name_is_valid ("A", NULL));
  CHECK (volume_name_is_valid ("a..b", NULL));   /* no slash: harmless */

  CHECK (!volume_name_is_valid ("", &why) && why != NULL);
  CHECK (!volume_name_is_valid (NULL, NULL));
  CHECK (!volume_name_is_valid (".hidden", NULL));
  CHECK (!volume_name_is_valid ("..", NULL));
  CHECK (!volume_name_is_valid ("../etc/passwd", NULL));
  CHECK (!volume_name_is_valid ("a/b", NULL));
  CHECK (!volume_name_is_valid ("a b", NULL));
  CHECK (!volume_name_is_valid ("tab\tname", NULL));
  CHECK (!volume_name_is_valid ("new\nline", NULL));
  CHECK (!volume_name_is_valid ("caf\xc3\xa9", NULL));
  CHECK (!volume_name_is_valid ("a%2fb", NULL));
  CHECK (!volume_name_is_valid ("a\\b", NULL));

  memset (long_name, 'x', 200);
  long_name[200] = '\0';
  CHECK (volume_name_is_valid (long_name, NULL));
  long_name[200] = 'x';
  long_name[201] = '\0';
  CHECK (!volume_name_is_valid (long_name, &why));
  CHECK (why && strstr (why, "200") != NULL);

  CHECK (volume_name_from_meta_file ("disk.meta", out) &&
         strcmp (out, "disk") == 0);
  CHECK (volume_name_from_meta_file ("a.b.meta", out) &&
         strcmp (out, "a.b") == 0);
  CHECK (!volume_name_from_meta_file (".meta", out));
  CHECK (!volume_name_from_meta_file (".x.meta", out));
  CHECK (!volume_name_from_meta_file ("disk.0.chunk", out));
  CHECK (!volume_name_from_meta_file ("disk.meta.tmp", out));
  CHECK (!volume_name_from_meta_file (".disk.meta.tmp.12", out));

  TEST_EXIT ();
}
