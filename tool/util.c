/* shardkit volume tool: sizes, JSON strings and the progress bar.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "tool.h"

int
parse_size (const char *s, uint64_t *out, const char **why)
{
  static const char suffixes[] = "KMGTPE";
  const char *p = s, *sfx;
  uint64_t v = 0;
  unsigned shift = 0;

  if (*p < '0' || *p > '9') {
    *why = "not a size (a number, optionally followed by K, M, G, T, P or E)";
    return -1;
  }
  for (; *p >= '0' && *p <= '9'; ++p) {
    if (v > (UINT64_MAX - 9) / 10) {
      *why = "too large";
      return -1;
    }
    v = v * 10 + (uint64_t) (*p - '0');
  }
  if (*p) {
    char c = (char) (*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    sfx = c ? strchr (suffixes, c) : NULL;
    if (sfx == NULL && (c == 'B' && p[1] == '\0'))
      sfx = NULL, ++p;          /* "512B": bytes */
    else if (sfx == NULL) {
      *why = "not a size (a number, optionally followed by K, M, G, T, P "
        "or E)";
      return -1;
    }
    else {
      shift = 10 * (unsigned) (sfx - suffixes + 1);
      ++p;
      if (strcmp (p, "iB") == 0 || strcmp (p, "B") == 0 || *p == '\0')
        p += strlen (p);
      else {
        *why = "not a size (a number, optionally followed by K, M, G, T, P "
          "or E)";
        return -1;
      }
    }
  }
  if (shift && v > (UINT64_MAX >> shift)) {
    *why = "too large";
    return -1;
  }
  *out = v << shift;
  return 0;
}

const char *
human_size (uint64_t bytes, char *buf, size_t len)
{
  static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB",
                                       "EiB" };
  double v = (double) bytes;
  int u = -1;

  while (v >= 1024 && u < 5) {
    v /= 1024;
    u++;
  }
  if (u < 0)
    snprintf (buf, len, "%" PRIu64 " B", bytes);
  else
    snprintf (buf, len, "%.1f %s", v, units[u]);
  return buf;
}

void
json_string (FILE *fp, const char *s)
{
  fputc ('"', fp);
  for (; *s; ++s) {
    unsigned char c = (unsigned char) *s;
    if (c == '"' || c == '\\')
      fprintf (fp, "\\%c", c);
    else if (c == '\n')
      fputs ("\\n", fp);
    else if (c < 0x20 || c == 0x7f)
      fprintf (fp, "\\u%04x", c);
    else
      fputc (c, fp);
  }
  fputc ('"', fp);
}

/* The progress bar.  Drawn at most ten times a second, from whichever
 * thread reports progress then; erased at the end so that the summary
 * line that follows stands alone.
 */
static pthread_mutex_t progress_lock = PTHREAD_MUTEX_INITIALIZER;
static bool progress_on;
static const char *progress_what;
static uint64_t progress_total, progress_done;
static struct timespec progress_last;

static void
draw (void)
{
  const int width = 30;
  int filled = progress_total ?
    (int) (progress_done * (uint64_t) width / progress_total) : width;
  char bar[64];

  memset (bar, '#', (size_t) filled);
  memset (bar + filled, '.', (size_t) (width - filled));
  bar[width] = '\0';
  fprintf (stderr, "\r%s [%s] %" PRIu64 "/%" PRIu64 " (%d%%) ",
           progress_what, bar, progress_done, progress_total,
           progress_total ? (int) (progress_done * 100 / progress_total) : 100);
  fflush (stderr);
}

void
progress_start (const char *what, uint64_t total)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&progress_lock);
  progress_on = opts.progress == 1 ||
    (opts.progress == -1 && isatty (STDERR_FILENO));
  progress_what = what;
  progress_total = total;
  progress_done = 0;
  clock_gettime (CLOCK_MONOTONIC, &progress_last);
  if (progress_on)
    draw ();
}

void
progress_add (uint64_t done)
{
  struct timespec now;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&progress_lock);
  progress_done += done;
  if (!progress_on)
    return;
  clock_gettime (CLOCK_MONOTONIC, &now);
  if ((now.tv_sec - progress_last.tv_sec) * 1000000000L +
      (now.tv_nsec - progress_last.tv_nsec) >= 100000000L ||
      progress_done == progress_total) {
    progress_last = now;
    draw ();
  }
}

void
progress_end (void)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&progress_lock);
  if (progress_on) {
    draw ();
    fprintf (stderr, "\n");
    fflush (stderr);
  }
  progress_on = false;
}
