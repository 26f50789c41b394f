#include "treelock.h"

#include "errors.h"
#include "fileio.h"
#include "layout.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct treelock {
	int fd;
};

/* What the holder wrote: "pid N command". */
static void holder(int fd, long *pid, char *cmd, size_t len)
{
	char buf[128];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	char *end;

	*pid = 0;
	snprintf(cmd, len, "issue or push");
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (strncmp(buf, "pid ", 4) != 0)
		return;
	*pid = strtol(buf + 4, &end, 10);
	if (*end == ' ') {
		end[strcspn(end, "\n")] = '\0';
		if (strcmp(end + 1, "issue") == 0 || strcmp(end + 1, "push") == 0)
			snprintf(cmd, len, "%s", end + 1);
	}
}

struct treelock *treelock_take(const char *root, const char *command, struct sftca_msg *m)
{
	char dir[4200], path[4300], line[96], cmd[16];
	struct treelock *l = NULL;
	struct stat st;
	long pid;
	int fd;

	/* Not even a lock directory under a mistyped root. */
	if (layout_check_tree(root, m) != 0)
		return NULL;
	snprintf(dir, sizeof(dir), "%s/etc/sf", root);
	snprintf(path, sizeof(path), "%s/" TREELOCK_NAME, dir);
	if (mkdir_p(dir, 0755) != 0) {
		msg_set(m, "%s cannot be created for the lock file: %s", dir, strerror(errno));
		return NULL;
	}
	/* Root opens it in a tree others may write to: never through a link,
	 * and only a regular file. */
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
	if (fd < 0) {
		msg_set(m, "lock file %s: %s", path,
			errno == ELOOP ? "a symbolic link, refused" : strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		msg_set(m, "lock file %s is not a regular file: refused", path);
		goto fail;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			holder(fd, &pid, cmd, sizeof(cmd));
			if (pid > 0)
				msg_set(m, "another sftca %s is running on %s (pid %ld); wait for it to "
					"finish (lock %s)", cmd, root, pid, path);
			else
				msg_set(m, "another sftca %s is running on %s; wait for it to finish "
					"(lock %s)", cmd, root, path);
		} else {
			msg_set(m, "lock file %s: %s", path, strerror(errno));
		}
		goto fail;
	}
	snprintf(line, sizeof(line), "pid %ld %s\n", (long)getpid(), command);
	if (ftruncate(fd, 0) != 0 || pwrite(fd, line, strlen(line), 0) != (ssize_t)strlen(line)) {
		msg_set(m, "lock file %s cannot be written: %s", path, strerror(errno));
		goto fail;
	}
	if ((l = malloc(sizeof(*l))) == NULL) {
		msg_set(m, "out of memory");
		goto fail;
	}
	l->fd = fd;
	return l;
fail:
	close(fd);
	return NULL;
}

void treelock_release(struct treelock *l)
{
	if (l == NULL)
		return;
	/* Emptied while still held: a run leaves the tree's files as it found
	 * them (a rerun with nothing to do changes no file). */
	if (ftruncate(l->fd, 0) != 0)
		log_debug("the lock file keeps this run's pid: %s", strerror(errno));
	close(l->fd); /* closing the only descriptor releases the flock */
	free(l);
}
