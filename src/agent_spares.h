/* agent_spares.h — the scratch dirs and log files of delivered tasks, kept
 * empty under STATE/spare/ and renamed into place for the next tasks.
 *
 * Why: a trivial task used to cost two inode creations and two deletions
 * (its scratch dir and its log). On ext4 without a journal every creation
 * scans past each inode deleted in the last 5 s (305 s while its inode
 * table block is dirty) — at hundreds of tasks a second that scan was an
 * eighth of the machine's CPU. A rename allocates no inode anywhere.
 *
 * Only what is provably clean is kept: an empty directory or a file that
 * nobody else holds open (a write lease is refused otherwise), owned by the
 * agent, with one link and no extended attributes (no ACL, no label); its
 * mode is reset. Anything else is removed as before. The pool is bounded
 * and starts empty: whatever a killed agent left in spare/ is removed. */
#ifndef GPUNODE_AGENT_SPARES_H
#define GPUNODE_AGENT_SPARES_H

#include <stdbool.h>

#include "err.h"

#define SPARES_MAX 64 /* of each kind: more than a host runs at once */

struct spares;

/* Creates (or empties) STATE_DIR/spare. */
struct spares *spares_open(const char *state_dir, struct err *e);
void spares_close(struct spares *s);

/* The janitor's side: moves a delivered task's scratch dir (log file) into
 * the pool when it is clean and the pool has room. False: the caller
 * removes it. */
bool spares_keep_dir(struct spares *s, const char *path);
bool spares_keep_log(struct spares *s, const char *path);

/* The start's side: renames a kept dir (empty log file) to PATH. False when
 * the pool has none or PATH exists: the caller creates it as before. */
bool spares_reuse_dir(struct spares *s, const char *path);
bool spares_reuse_log(struct spares *s, const char *path);

#endif
