/* shardkit: parsing key=value parameters in .config.
 * GPL-3.0-or-later.
 *
 * Each function fails with exactly one nbdkit_error line that names the
 * parameter (nbdkit stops at start-up with it) and returns -1, leaving
 * the result untouched; 0 on success.  Numbers go through nbdkit's own
 * parsers, so every piece of shardkit reads them as nbdkit does.
 */
#ifndef SHARDKIT_PARAMS_H
#define SHARDKIT_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

/* A duration (see duration.h: "100ms", "2s", "1.5s", "2m", "250us", a
 * bare number is seconds), at most DURATION_MAX (24h), in nanoseconds.
 */
extern int param_duration (const char *key, const char *value, uint64_t *ns);

/* A whole number from 0 to MAX (nbdkit_parse_unsigned). */
extern int param_unsigned (const char *key, const char *value, unsigned max,
                           unsigned *u);

/* A boolean, spelled as nbdkit_parse_bool takes it (1/0, true/false,
 * t/f, yes/no, y/n, on/off, any case).
 */
extern int param_bool (const char *key, const char *value, bool *b);

#endif /* SHARDKIT_PARAMS_H */
