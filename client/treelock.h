/* One sftca issue or push at a time on an FMC tree: an exclusive flock on
 * ROOT/etc/sf/sftca.lock, held for the whole run. A second run is refused
 * at once, naming the command and pid that hold the tree, instead of
 * removing the first run's stage or pushing half-written pairs. */
#ifndef SFTCA_TREELOCK_H
#define SFTCA_TREELOCK_H

#include "msg.h"

#define TREELOCK_NAME "sftca.lock"

struct treelock;

/* Take the lock of the tree at root for command ("issue", "push"). NULL
 * with m set when another run holds it ("another sftca issue is running
 * on ROOT (pid N)") or the lock file cannot be used. */
struct treelock *treelock_take(const char *root, const char *command, struct sftca_msg *m);
/* Release: the file is emptied and stays, unlocked; NULL is a no-op. */
void treelock_release(struct treelock *l);

#endif
