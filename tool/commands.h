/* shardkit volume tool: the commands.
 * GPL-3.0-or-later.
 *
 * Each returns an exit status (tool.h).  ARGS are the arguments after
 * WHERE, their number already checked against the command table and a
 * NAME argument already checked to be a valid volume name.
 */
#ifndef SHARDKIT_TOOL_COMMANDS_H
#define SHARDKIT_TOOL_COMMANDS_H

#include "where.h"

/* cmd-volume.c: commands that change a volume. */
extern int cmd_create (struct where *w, char **args);
extern int cmd_delete (struct where *w, char **args);
extern int cmd_resize (struct where *w, char **args);
/* cmd-snapshot.c */
extern int cmd_snapshot (struct where *w, char **args);
extern int cmd_clone (struct where *w, char **args);
extern int cmd_rollback (struct where *w, char **args);
extern int cmd_flatten (struct where *w, char **args);
/* The volumes that name NAME as their base or data, as "A (base), B
 * (data)" into BUF.  Returns how many, or -1 after an error.
 */
extern int volume_dependents (struct where *w, const char *name,
                              char *buf, size_t len);
/* cmd-show.c: commands that look. */
extern int cmd_list (struct where *w, char **args);
extern int cmd_info (struct where *w, char **args);
extern int cmd_du (struct where *w, char **args);
/* cmd-check.c */
extern int cmd_check (struct where *w, char **args);
/* cmd-status.c, cmd-scrub.c: a set of directories (set-where.h). */
extern int cmd_status (struct where *w, char **args);
extern int cmd_scrub (struct where *w, char **args);
/* cmd-copy.c */
extern int cmd_copy (struct where *w, char **args);

/* A size argument for volume NAME: a volume size (1 byte to
 * VOLUME_SIZE_MAX).  Returns 0 or -1 after one error line.
 */
extern int volume_size_arg (const char *s, uint64_t *size);

#endif
