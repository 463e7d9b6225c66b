/* shardkit: the volume tool.
 * GPL-3.0-or-later.
 *
 *   shardkit [OPTIONS] COMMAND WHERE [ARGS]
 *
 * WHERE is a directory of volumes (as sharded-file's dir=) or
 * s3://BUCKET[/PREFIX] (as s3-object's bucket= and prefix=).  This file
 * is the options, the table of commands and the dispatch; the commands
 * are in cmd-*.c, WHERE in where*.c.  See shardkit(1).
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "tool.h"
#include "volume-meta.h"
#include "volume-name.h"
#include "where.h"

struct tool_options opts = { .progress = -1, .jobs = 4, .url_style = -1 };
const char *program_name = "shardkit";

/* Options that only some commands take. */
#define OPT_JSON        1u
#define OPT_CHUNK_SIZE  2u
#define OPT_FORCE       4u
#define OPT_JOBS        8u

/* The commands.  A row says how many arguments follow WHERE, whether
 * the first is a volume NAME (checked here, before anything is
 * opened), and which options it takes.
 */
struct command {
  const char *name;
  const char *args;             /* synopsis after WHERE */
  unsigned min_args, max_args;
  bool first_is_name;
  unsigned options;             /* OPT_* */
  /* WHERE is the directories of a set, DIR1,DIR2,... (set-where.h),
   * which the command opens itself: W has only its display.
   */
  bool set_where;
  const char *summary;
  int (*run) (struct where *w, char **args);
};

static const struct command commands[] = {
  { "create", "NAME SIZE", 2, 2, true, OPT_CHUNK_SIZE, false,
    "create a volume of SIZE bytes (--chunk-size, default 4M)", cmd_create },
  { "list", "", 0, 0, false, OPT_JSON, false,
    "list the volumes: size, chunk size, chunks, allocated", cmd_list },
  { "info", "NAME", 1, 1, true, OPT_JSON, false,
    "everything about a volume, and who holds it", cmd_info },
  { "du", "[NAME]", 0, 1, true, OPT_JSON, false,
    "bytes the volumes take in the store", cmd_du },
  { "delete", "NAME", 1, 1, true, OPT_JOBS, false,
    "delete a volume that is not in use", cmd_delete },
  { "resize", "NAME SIZE", 2, 2, true, OPT_FORCE | OPT_JOBS, false,
    "grow a volume (shrink it with --force)", cmd_resize },
  { "check", "NAME", 1, 1, true, OPT_JSON | OPT_JOBS, false,
    "read every chunk and verify it; exit 1 if any is bad", cmd_check },
  { "snapshot", "NAME SNAP", 2, 2, true, 0, false,
    "freeze NAME's data as read-only volume SNAP (no data copied)",
    cmd_snapshot },
  { "clone", "SNAP NAME", 2, 2, true, 0, false,
    "a new writable volume NAME whose data starts as snapshot SNAP's",
    cmd_clone },
  { "rollback", "NAME SNAP", 2, 2, true, 0, false,
    "drop NAME's writes since its latest snapshot SNAP", cmd_rollback },
  { "flatten", "NAME", 1, 1, true, 0, false,
    "copy into NAME every chunk it reads from its snapshots, drop its base",
    cmd_flatten },
  { "copy", "NAME DEST", 2, 2, true, OPT_JSON | OPT_JOBS, false,
    "copy NAME with its snapshots to DEST (a directory or bucket)",
    cmd_copy },
  { "status", "NAME", 1, 1, true, OPT_JSON, true,
    "each location of a set: up, right, how far behind; exit 1 if any is "
    "not", cmd_status },
  { "scrub", "NAME", 1, 1, true, OPT_JSON | OPT_JOBS, true,
    "check every copy or fragment of every chunk of a set, repair what "
    "is bad or lacks", cmd_scrub },
};
#define NR_COMMANDS (sizeof commands / sizeof commands[0])

static void
usage (FILE *fp)
{
  size_t i;

  fprintf (fp,
           "Usage: shardkit [OPTIONS] COMMAND WHERE [ARGS]\n"
           "\n"
           "WHERE is a directory of volumes, or s3://BUCKET[/PREFIX]; so is\n"
           "copy's DEST (the --endpoint, --region and --profile given serve\n"
           "both).  For status and scrub, the locations of a set in its\n"
           "order: LOC1,LOC2,..., each a directory or s3://BUCKET[/PREFIX]\n"
           "(every bucket on the one --endpoint)\n"
           "\n"
           "Commands:\n");
  for (i = 0; i < NR_COMMANDS; ++i) {
    char syn[64];
    snprintf (syn, sizeof syn, "%s WHERE %s", commands[i].name,
              commands[i].args);
    fprintf (fp, "  %-28s %s\n", syn, commands[i].summary);
  }
  fprintf (fp,
           "\n"
           "Options:\n"
           "  --chunk-size=SIZE   chunk size of a new volume (64K-1G, power "
           "of two)\n"
           "  -f, --force         allow resize to shrink (discarding data)\n"
           "  -j, --jobs=N        chunks worked on at once (default 4)\n"
           "  --json              machine-readable output (list, info, du, "
           "check, copy,\n"
           "                      status)\n"
           "  --progress, --no-progress  progress bar (default: on a "
           "terminal)\n"
           "  --endpoint=URL      S3 server (default: AWS in --region)\n"
           "  --region=REGION     S3 signing region (default us-east-1)\n"
           "  --profile=PROFILE   profile of the shared credentials file\n"
           "  --url-style=path|virtual  S3 addressing\n"
           "  -v, --verbose       debug messages on stderr\n"
           "  -h, --help          this help\n"
           "  -V, --version       the version\n"
           "\n"
           "Exit status: 0 ok, 1 problems found, 2 usage or access error.\n"
           "See shardkit(1).\n");
}

/* One line and the exit status of a usage error. */
static int __attribute__ ((format (printf, 1, 2)))
usage_error (const char *fs, ...)
{
  va_list args;
  char buf[512];

  va_start (args, fs);
  vsnprintf (buf, sizeof buf, fs, args);
  va_end (args);
  fprintf (stderr, "%s: %s (shardkit --help)\n", program_name, buf);
  return EXIT_ERROR;
}

enum {
  LONG_JSON = 256, LONG_CHUNK_SIZE, LONG_ENDPOINT, LONG_REGION,
  LONG_PROFILE, LONG_URL_STYLE, LONG_PROGRESS, LONG_NO_PROGRESS,
};

static const struct option long_options[] = {
  { "help",        no_argument,       NULL, 'h' },
  { "version",     no_argument,       NULL, 'V' },
  { "verbose",     no_argument,       NULL, 'v' },
  { "force",       no_argument,       NULL, 'f' },
  { "jobs",        required_argument, NULL, 'j' },
  { "json",        no_argument,       NULL, LONG_JSON },
  { "chunk-size",  required_argument, NULL, LONG_CHUNK_SIZE },
  { "endpoint",    required_argument, NULL, LONG_ENDPOINT },
  { "region",      required_argument, NULL, LONG_REGION },
  { "profile",     required_argument, NULL, LONG_PROFILE },
  { "url-style",   required_argument, NULL, LONG_URL_STYLE },
  { "progress",    no_argument,       NULL, LONG_PROGRESS },
  { "no-progress", no_argument,       NULL, LONG_NO_PROGRESS },
  { NULL, 0, NULL, 0 },
};

/* Take option C.  Returns -1 to go on, else the exit status. */
static int
take_option (int c, const char *arg, const char *optname, unsigned *given)
{
  const char *why;

  switch (c) {
  case 'h':
    usage (stdout);
    return EXIT_OK;
  case 'V':
    printf ("shardkit %s\n", PACKAGE_VERSION);
    return EXIT_OK;
  case 'v':
    opts.verbose++;
    break;
  case 'f':
    opts.force = true;
    *given |= OPT_FORCE;
    break;
  case 'j': {
    char *end;
    unsigned long n;

    errno = 0;
    n = strtoul (arg, &end, 10);
    if (errno || end == arg || *end || arg[0] < '0' || arg[0] > '9' ||
        n < 1 || n > 256)
      return usage_error ("--jobs=%s: expected a number from 1 to 256", arg);
    opts.jobs = (unsigned) n;
    *given |= OPT_JOBS;
    break;
  }
  case LONG_JSON:
    opts.json = true;
    *given |= OPT_JSON;
    break;
  case LONG_CHUNK_SIZE: {
    uint64_t cs;

    if (parse_size (arg, &cs, &why) == -1)
      return usage_error ("--chunk-size=%s: %s", arg, why);
    if (!chunk_size_is_valid (cs))
      return usage_error ("--chunk-size=%s: must be a power of two from "
                          "64K to 1G", arg);
    opts.chunk_size = (uint32_t) cs;
    *given |= OPT_CHUNK_SIZE;
    break;
  }
  case LONG_ENDPOINT:
    if (strncmp (arg, "http://", 7) != 0 && strncmp (arg, "https://", 8) != 0)
      return usage_error ("--endpoint=%s: expected http://HOST[:PORT] or "
                          "https://HOST[:PORT]", arg);
    opts.endpoint = arg;
    break;
  case LONG_REGION:
    if (arg[0] == '\0')
      return usage_error ("--region must not be empty");
    opts.region = arg;
    break;
  case LONG_PROFILE:
    opts.profile = arg;
    break;
  case LONG_URL_STYLE:
    if (strcmp (arg, "path") == 0)
      opts.url_style = 0;
    else if (strcmp (arg, "virtual") == 0)
      opts.url_style = 1;
    else
      return usage_error ("--url-style=%s: must be 'path' or 'virtual'", arg);
    break;
  case LONG_PROGRESS:
    opts.progress = 1;
    break;
  case LONG_NO_PROGRESS:
    opts.progress = 0;
    break;
  case ':':
    return usage_error ("option '%s' needs a value", optname);
  default:
    return usage_error ("unknown option '%s'", optname);
  }
  return -1;
}

static const char *const option_names[] = {
  [OPT_JSON] = "--json", [OPT_CHUNK_SIZE] = "--chunk-size",
  [OPT_FORCE] = "--force", [OPT_JOBS] = "--jobs",
};

int
main (int argc, char *argv[])
{
  const struct command *cmd = NULL;
  unsigned given = 0, nargs, bit;
  struct where w;
  const char *why;
  size_t i;
  int c, r;

  /* Options anywhere on the line (GNU getopt permutes), "--" ends them
   * (a volume may be named "-x").  Our own one-line messages.
   */
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":hVvfj:", long_options,
                           NULL)) != -1) {
    r = take_option (c, optarg, argv[optind - 1], &given);
    if (r >= 0)
      return r;
  }

  if (optind >= argc)
    return usage_error ("no command given");
  for (i = 0; i < NR_COMMANDS; ++i)
    if (strcmp (argv[optind], commands[i].name) == 0)
      cmd = &commands[i];
  if (cmd == NULL)
    return usage_error ("unknown command '%s'", argv[optind]);
  optind++;
  if (optind >= argc)
    return usage_error ("%s: no WHERE given (a directory or "
                        "s3://BUCKET[/PREFIX])", cmd->name);
  nargs = (unsigned) (argc - optind - 1);
  if (nargs < cmd->min_args || nargs > cmd->max_args)
    return usage_error ("usage: shardkit %s WHERE %s", cmd->name, cmd->args);
  for (bit = 1; bit <= OPT_JOBS; bit <<= 1)
    if ((given & bit) && !(cmd->options & bit))
      return usage_error ("%s does not take %s", cmd->name,
                          option_names[bit]);
  if (cmd->first_is_name && nargs > 0 &&
      !volume_name_is_valid (argv[optind + 1], &why))
    return usage_error ("'%s': %s", argv[optind + 1], why);

  if (cmd->set_where) {
    memset (&w, 0, sizeof w);
    if ((w.display = strdup (argv[optind])) == NULL) {
      tool_error ("strdup: %m");
      return EXIT_ERROR;
    }
  }
  else if (where_open (argv[optind], &w) == -1) {
    where_close (&w);
    return EXIT_ERROR;
  }
  r = cmd->run (&w, &argv[optind + 1]);
  where_close (&w);
  if (fflush (stdout) == EOF || ferror (stdout)) {
    tool_error ("standard output: %m");
    return EXIT_ERROR;
  }
  return r;
}
