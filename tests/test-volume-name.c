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

  /* Chunk generations. */
  {
    char stem[VOLUME_CHUNK_STEM_MAX];
    uint64_t gen, n;

    volume_chunk_stem ("disk", 0, stem, sizeof stem);
    CHECK (strcmp (stem, "disk") == 0);
    volume_chunk_stem ("disk", 7, stem, sizeof stem);
    CHECK (strcmp (stem, "disk@7") == 0);
    long_name[200] = '\0';
    volume_chunk_stem (long_name, UINT64_MAX, stem, sizeof stem);
    CHECK (strlen (stem) == 201 + 20 && stem[200] == '@');
    CHECK (volume_chunk_stem_parse ("disk@7", out, &gen) &&
           strcmp (out, "disk") == 0 && gen == 7);
    CHECK (volume_chunk_stem_parse ("disk", out, &gen) && gen == 0);
    CHECK (!volume_chunk_stem_parse ("disk@0", out, &gen));
    CHECK (!volume_chunk_stem_parse ("disk@07", out, &gen));
    CHECK (!volume_chunk_stem_parse ("disk@", out, &gen));
    CHECK (!volume_chunk_stem_parse ("@3", out, &gen));
    CHECK (!volume_chunk_stem_parse ("disk@3@4", out, &gen));
    CHECK (!volume_chunk_stem_parse ("disk@x", out, &gen));
    CHECK (!volume_chunk_stem_parse ("disk@99999999999999999999", out, &gen));

    CHECK (volume_chunk_name_parse_gen ("disk@3.12.chunk", out, &gen, &n) &&
           strcmp (out, "disk") == 0 && gen == 3 && n == 12);
    CHECK (volume_chunk_name_parse_gen ("a.b.0.chunk", out, &gen, &n) &&
           strcmp (out, "a.b") == 0 && gen == 0 && n == 0);
    CHECK (volume_chunk_name_parse_gen ("a.b@1.0.chunk", out, &gen, &n) &&
           strcmp (out, "a.b") == 0 && gen == 1);
    CHECK (!volume_chunk_name_parse_gen ("disk@0.1.chunk", out, &gen, &n));
    CHECK (!volume_chunk_name_parse_gen ("disk@3.01.chunk", out, &gen, &n));
    CHECK (!volume_chunk_name_parse_gen ("disk@3.chunk", out, &gen, &n));
    CHECK (!volume_chunk_name_parse_gen ("@3.1.chunk", out, &gen, &n));
    /* The generation-0 parser keeps refusing other generations. */
    CHECK (!volume_chunk_name_parse ("disk@3.12.chunk", out, &n));
    CHECK (volume_name_owns_file ("disk@3.12.chunk"));
    CHECK (!volume_name_owns_file ("disk@0.12.chunk"));
  }

  TEST_EXIT ();
}
