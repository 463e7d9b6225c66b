/* shardkit unit tests: assertions that say what failed.  GPL-3.0-or-later. */
#ifndef SHARDKIT_TEST_UTIL_H
#define SHARDKIT_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>

static int test_failures;

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: check failed: %s\n",                     \
               __FILE__, __LINE__, #cond);                              \
      test_failures++;                                                  \
    }                                                                   \
  } while (0)

#define TEST_EXIT()                                                     \
  do {                                                                  \
    if (test_failures) {                                                \
      fprintf (stderr, "%d check(s) failed\n", test_failures);          \
      exit (EXIT_FAILURE);                                              \
    }                                                                   \
    printf ("all checks passed\n");                                     \
    exit (EXIT_SUCCESS);                                                \
  } while (0)

#endif
