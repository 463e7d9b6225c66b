/* shardkit volume tool: what its files share.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_TOOL_H
#define SHARDKIT_TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses (shardkit(1), EXIT STATUS). */
#define EXIT_OK        0
#define EXIT_PROBLEMS  1        /* the command ran and found problems */
#define EXIT_ERROR     2        /* bad usage, no access, or a failure */

struct tool_options {
  bool json;                    /* --json */
  int verbose;                  /* --verbose: debug messages on stderr */
  bool force;                   /* --force */
  int progress;                 /* --progress / --no-progress, -1: auto */
  unsigned jobs;                /* --jobs */
  uint32_t chunk_size;          /* --chunk-size, 0: the default */
  /* s3://: where the bucket is (as s3-object's parameters) */
  const char *endpoint, *region, *profile;
  int url_style;                /* -1 auto, 0 path, 1 virtual */
};
extern struct tool_options opts;
extern const char *program_name;

/* One line on stderr, "shardkit: ..." (the same way as nbdkit_error). */
extern void tool_error (const char *fs, ...)
  __attribute__ ((format (printf, 1, 2)));

/* nbdkit-compat.c: while capturing, nbdkit_error in this thread keeps
 * its message (the last one) instead of printing it, so that check can
 * report it against the chunk it concerns.
 */
extern void error_capture_begin (void);
extern const char *error_capture_end (void);

/* A size: a number with an optional K, M, G, T, P or E (powers of
 * 1024, "KiB" and "K" alike), as nbdkit reads sizes.  Returns 0, or -1
 * with *WHY.
 */
extern int parse_size (const char *s, uint64_t *out, const char **why);
/* "4.0 MiB" into BUF. */
extern const char *human_size (uint64_t bytes, char *buf, size_t len);

/* JSON output (json.c): a string with its quotes, escaped. */
extern void json_string (FILE *fp, const char *s);

/* A progress bar on stderr when it is a terminal (progress.c).  Safe to
 * call from several threads.  Nothing is drawn unless started.
 */
extern void progress_start (const char *what, uint64_t total);
extern void progress_add (uint64_t done);
extern void progress_end (void);

#endif
