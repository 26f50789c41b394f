#include "atomicfile.h"

#include "errors.h"
#include "failpoint.h"
#include "fileio.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void af_backup_stamp(char out[32])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, 32, "%Y%m%dT%H%M%SZ", &tm);
}

/* Every operation below goes through directory descriptors. The directory
 * of a pair (af_write_set), or of af_write_nofollow(), is opened without
 * following a symbolic link in its last component: a link
 * there (certs_pushed -> /etc) would make root write keys wherever it
 * points. */

/* dir without trailing slashes ("/" stays "/"). */
/* PARENT/NAME for messages; a path too long for PATH_MAX ends in "..." (it
 * is only shown: the work goes through directory descriptors). */
static void shown_path(char shown[PATH_MAX], const char *parent, const char *name)
{
	if (snprintf(shown, PATH_MAX, "%s/%s", parent, name) >= PATH_MAX)
		memcpy(shown + PATH_MAX - 4, "...", 4);
}

static int trim_dir(const char *dir, char *buf, size_t len)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 0 || n >= len)
		return SFTCA_ERR_INVALID;
	memcpy(buf, dir, n);
	buf[n] = '\0';
	return 0;
}

/* errno of a failed O_NOFOLLOW|O_DIRECTORY open of name in at (shown as
 * path) into an error; a symbolic link is refused by name. */
static int open_dir_error(int at, const char *name, const char *path)
{
	int e = errno;
	struct stat st;

	if ((e == ELOOP || e == ENOTDIR) && fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode)) {
		log_error("%s is a symbolic link: refusing to write through it (it must be a real "
			  "directory)", path);
		return SFTCA_ERR_INVALID;
	}
	if (e == ENOENT)
		return SFTCA_ERR_NOT_FOUND;
	log_error("%s: %s", path, e == ENOTDIR ? "not a directory" : strerror(e));
	return e == EACCES || e == EROFS ? SFTCA_ERR_DENIED : e == ENOTDIR ? SFTCA_ERR_INVALID
									 : SFTCA_ERR_IO;
}

static int open_dir(const char *dir, int nofollow, int *fd)
{
	char path[PATH_MAX];
	int r;

	if ((r = trim_dir(dir, path, sizeof(path))) != 0)
		return r;
	if ((*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0))) >= 0)
		return 0;
	return open_dir_error(AT_FDCWD, path, path);
}

/* The mode and owner a file gets (struct af_file's keep). */
struct attrs {
	unsigned mode;
	int owner;          /* uid and gid are to be kept */
	uid_t uid;
	gid_t gid;
	const char *where;  /* the directory, for messages */
};

/* From the file f replaces in dfd, else from the first of its siblings
 * there; f->mode (and the creator's owner) when there is none, without
 * keep, or without a directory (dfd < 0). */
static void resolve_attrs(int dfd, const char *where, const struct af_file *f,
			  const struct af_keep *keep, struct attrs *a)
{
	struct stat st;

	*a = (struct attrs){ .mode = f->mode, .where = where };
	for (int i = -1; keep != NULL && dfd >= 0 && i < 3; i++) {
		const char *name = i < 0 ? f->name : keep->follow[i];
		if (name == NULL)
			break;
		if (strchr(name, '/') == NULL && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode)) {
			*a = (struct attrs){ st.st_mode & 07777, 1, st.st_uid, st.st_gid, where };
			return;
		}
	}
}

/* The owner a asks for, where this process may give it: as root, or when
 * it is ours already (then only the group is set). Otherwise the file
 * changes hands, and the warning says so. */
static void set_owner(int fd, const char *name, const struct attrs *a)
{
	uid_t me = geteuid();

	if (!a->owner)
		return;
	if (me != 0 && a->uid != me)
		log_warn("%s/%s: owner %lu:%lu not kept (only root can give a file away): it is "
			 "now owned by uid %lu", a->where, name, (unsigned long)a->uid,
			 (unsigned long)a->gid, (unsigned long)me);
	else if (fchown(fd, a->uid, a->gid) != 0)
		log_warn("%s/%s: owner %lu:%lu not kept: %s", a->where, name, (unsigned long)a->uid,
			 (unsigned long)a->gid, strerror(errno));
}

/* Write data to a new file name in dfd (must not exist) with a's mode and
 * owner, fsync it. */
static int write_new_file(int dfd, const char *dir, const char *name, const struct af_file *f,
			  const struct attrs *a)
{
	int fd, r;

	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, a->mode & 0600);
	if (fd < 0) {
		log_error("%s/%s: %s", dir, name, strerror(errno));
		return errno == EACCES || errno == EROFS ? SFTCA_ERR_DENIED : SFTCA_ERR_IO;
	}
	set_owner(fd, f->name, a);
	/* Explicit mode, after the owner (which clears set-id bits): the umask
	 * must not widen or narrow what was asked. */
	if (fchmod(fd, a->mode) != 0 || (r = failpoint("atomic.write")) != 0 ||
	    (r = write_all(fd, f->data, f->len)) != 0 || (r = failpoint("atomic.fsync")) != 0 ||
	    fsync(fd) != 0) {
		log_error("%s/%s: write failed: %s", dir, name, strerror(errno));
		close(fd);
		unlinkat(dfd, name, 0);
		return SFTCA_ERR_IO;
	}
	if (close(fd) != 0) {
		unlinkat(dfd, name, 0);
		return SFTCA_ERR_IO;
	}
	return 0;
}

/* Hard-link name of sfd as "<name>.backup.<stamp>[.N]" in dfd (shown as dir). */
static int link_backup_as(int sfd, const char *name, int dfd, const char *dir, const char *stamp,
			  char bname[NAME_MAX + 1])
{
	for (int i = 0; i < 1000; i++) {
		int n = i == 0 ? snprintf(bname, (NAME_MAX + 1), "%s.backup.%s", name, stamp)
			       : snprintf(bname, (NAME_MAX + 1), "%s.backup.%s.%d", name, stamp, i);
		if (n < 0 || (size_t)n >= (NAME_MAX + 1))
			return SFTCA_ERR_INVALID;
		if (linkat(sfd, name, dfd, bname, 0) == 0)
			return 0;
		if (errno != EEXIST) {
			log_error("backup of %s as %s/%s: %s", name, dir, bname, strerror(errno));
			return SFTCA_ERR_IO;
		}
	}
	return SFTCA_ERR_EXISTS;
}

static int link_backup(int sfd, const char *name, int dfd, const char *dir, const char *stamp)
{
	char bname[NAME_MAX + 1];

	return link_backup_as(sfd, name, dfd, dir, stamp, bname);
}

/* A DIR of dfd's entries (the descriptor stays dfd's). */
static DIR *dir_of(int dfd)
{
	int fd = dup(dfd);
	DIR *d;

	if (fd < 0)
		return NULL;
	if ((d = fdopendir(fd)) == NULL)
		close(fd);
	else
		rewinddir(d);
	return d;
}

/* The pid in "<prefix><pid>" or "<prefix><pid>.<anything>" is gone: whoever
 * made the entry died (kill -9, power loss) and will not finish it. */
static int owner_gone(const char *name, const char *prefix)
{
	size_t plen = strlen(prefix);
	char *end;
	long pid;

	if (strncmp(name, prefix, plen) != 0)
		return 0;
	pid = strtol(name + plen, &end, 10);
	return end != name + plen && (*end == '\0' || *end == '.') && pid > 0 &&
	       kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Temporary files of writers that died. */
static void remove_stale_tmp(int dfd, const char *name)
{
	char prefix[NAME_MAX + 16];
	struct dirent *e;
	DIR *d;

	if ((size_t)snprintf(prefix, sizeof(prefix), ".%s.sftca-tmp.", name) >= sizeof(prefix) ||
	    (d = dir_of(dfd)) == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (owner_gone(e->d_name, prefix))
			unlinkat(dfd, e->d_name, 0);
	closedir(d);
}

/* preset: the mode and owner to give (NULL: resolved here from keep). */
static int write_one(const char *dir, int nofollow, const struct af_file *f,
		     const struct af_keep *keep, const char *backup_stamp, const struct attrs *preset)
{
	char tmp[NAME_MAX + 1], bname[NAME_MAX + 1] = "";
	struct attrs a;
	struct stat st;
	int n, r, dfd;

	n = snprintf(tmp, sizeof(tmp), ".%s.sftca-tmp.%ld", f->name, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp) || strchr(f->name, '/') != NULL)
		return SFTCA_ERR_INVALID;
	if ((r = open_dir(dir, nofollow, &dfd)) != 0) {
		if (r == SFTCA_ERR_NOT_FOUND)
			log_error("%s: no such directory", dir);
		return r == SFTCA_ERR_NOT_FOUND ? SFTCA_ERR_IO : r;
	}
	unlinkat(dfd, tmp, 0); /* left over by a crashed run that had our pid */
	remove_stale_tmp(dfd, f->name);
	if (preset != NULL)
		a = *preset;
	else
		resolve_attrs(dfd, dir, f, keep, &a);
	if ((r = write_new_file(dfd, dir, tmp, f, &a)) != 0)
		goto out;
	if (backup_stamp != NULL && fstatat(dfd, f->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && (r = link_backup_as(dfd, f->name, dfd, dir, backup_stamp, bname)) != 0) {
		bname[0] = '\0';
		goto fail;
	}
	if ((r = failpoint("atomic.rename")) != 0)
		goto fail;
	if (renameat(dfd, tmp, dfd, f->name) != 0) {
		log_error("rename %s/%s to %s: %s", dir, tmp, f->name, strerror(errno));
		r = SFTCA_ERR_IO;
		goto fail;
	}
	if ((r = failpoint("atomic.dirsync")) != 0 || (r = fsync(dfd) != 0 ? SFTCA_ERR_IO : 0) != 0)
		log_error("fsync of directory %s failed", dir);
	goto out;
fail:
	unlinkat(dfd, tmp, 0);
	/* Nothing was replaced: a backup of the unchanged file would only mislead. */
	if (bname[0])
		unlinkat(dfd, bname, 0);
out:
	close(dfd);
	return r;
}

int af_write(const char *dir, const struct af_file *f, const char *backup_stamp)
{
	return write_one(dir, 0, f, NULL, backup_stamp, NULL);
}

int af_write_nofollow(const char *dir, const struct af_file *f, const char *backup_stamp)
{
	return write_one(dir, 1, f, NULL, backup_stamp, NULL);
}

int af_write_keep(const char *dir, const struct af_file *f, const struct af_keep *keep,
		  const char *backup_stamp)
{
	return write_one(dir, 1, f, keep, backup_stamp, NULL);
}

int af_retire(const char *dir, const char *name, const char *backup_stamp, int *moved)
{
	struct stat st;
	int r, dfd;

	*moved = 0;
	if (strchr(name, '/') != NULL)
		return SFTCA_ERR_INVALID;
	if ((r = open_dir(dir, 0, &dfd)) != 0)
		return r == SFTCA_ERR_NOT_FOUND ? 0 : r;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		r = errno == ENOENT ? 0 : SFTCA_ERR_IO;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("%s/%s is not a regular file; left as it is", dir, name);
		r = SFTCA_ERR_INVALID;
		goto out;
	}
	if ((r = link_backup(dfd, name, dfd, dir, backup_stamp)) != 0)
		goto out;
	if (unlinkat(dfd, name, 0) != 0) {
		log_error("removing %s/%s (kept as a backup): %s", dir, name, strerror(errno));
		r = SFTCA_ERR_IO;
		goto out;
	}
	if (fsync(dfd) != 0) {
		r = SFTCA_ERR_IO;
		goto out;
	}
	*moved = 1;
out:
	close(dfd);
	return r;
}

/* Remove the regular files in pfd's entry name and the entry itself (a
 * stage we made). A symbolic link in its place is not followed: that would
 * empty whatever directory it names. */
static int remove_stage(int pfd, const char *name, const char *shown)
{
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	int r = 0;

	if (d == NULL) {
		int e0 = errno;
		if (fd >= 0)
			close(fd);
		if (e0 == ENOENT)
			return 0;
		log_error("%s: %s; not a stage this program made, left alone", shown,
			  e0 == ELOOP || e0 == ENOTDIR ? "not a directory" : strerror(e0));
		return SFTCA_ERR_IO;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) != 0)
			r = SFTCA_ERR_IO;
	}
	closedir(d);
	if (r == 0 && unlinkat(pfd, name, AT_REMOVEDIR) != 0)
		r = SFTCA_ERR_IO;
	return r;
}

/* Stages of runs that died ("BASE.sftca-stage.PID.XXXXXX" whose PID is
 * gone): they hold only links and new files (before the swap) or links to
 * what the live directory also links (after it), so removing them loses
 * nothing. A stage of a live run is left to it. */
static void remove_stale_stages(int pfd, const char *base, const char *parent)
{
	char prefix[NAME_MAX + 32], shown[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if ((size_t)snprintf(prefix, sizeof(prefix), "%s.sftca-stage.", base) >= sizeof(prefix) ||
	    (d = dir_of(pfd)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (!owner_gone(e->d_name, prefix))
			continue;
		shown_path(shown, parent, e->d_name);
		if (remove_stage(pfd, e->d_name, shown) != 0)
			log_warn("%s: a stale stage directory could not be removed", shown);
	}
	closedir(d);
}

/* Make "BASE.sftca-stage.PID.XXXXXX" (random, mode 0700) in pfd: nobody can
 * prepare something at a name known in advance. */
static int make_stage(int pfd, const char *base, char *name, size_t len)
{
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

	for (int tries = 0; tries < 100; tries++) {
		unsigned char rnd[6];
		char x[7];
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return SFTCA_ERR_IO;
		for (size_t i = 0; i < sizeof(rnd); i++)
			x[i] = chars[rnd[i] % (sizeof(chars) - 1)];
		x[6] = '\0';
		if ((size_t)snprintf(name, len, "%s.sftca-stage.%ld.%s", base, (long)getpid(), x) >= len)
			return SFTCA_ERR_INVALID;
		if (mkdirat(pfd, name, 0700) == 0)
			return 0;
		if (errno != EEXIST)
			return errno == EACCES || errno == EROFS ? SFTCA_ERR_DENIED : SFTCA_ERR_IO;
	}
	return SFTCA_ERR_EXISTS;
}

static int is_target(const struct af_file *files, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(files[i].name, name) == 0)
			return 1;
	return 0;
}

/* Link every other regular file of dfd into sfd, then back up the targets
 * (second pass, so a backup name never collides with a file still to be
 * carried over). SFTCA_ERR_PRECONDITION when an entry cannot be carried
 * over by a link. */
static int populate_stage(int dfd, int sfd, const char *stage, const struct af_file *files,
			  size_t n, const char *stamp)
{
	DIR *d = dir_of(dfd);
	struct dirent *e;
	struct stat st;
	int r = 0;

	if (d == NULL)
		return SFTCA_ERR_IO;
	for (int pass = 0; pass < 2 && r == 0; pass++) {
		rewinddir(d);
		while (r == 0 && (e = readdir(d)) != NULL) {
			int target;

			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
				r = SFTCA_ERR_PRECONDITION;
				break;
			}
			target = is_target(files, n, e->d_name);
			if (pass == 0 && !target && linkat(dfd, e->d_name, sfd, e->d_name, 0) != 0)
				r = errno == EEXIST ? SFTCA_ERR_IO : SFTCA_ERR_PRECONDITION;
			else if (pass == 1 && target && stamp != NULL)
				r = link_backup(dfd, e->d_name, sfd, stage, stamp);
		}
	}
	closedir(d);
	return r;
}

/* After the swap: a file another process created in the directory between
 * populate_stage() and the swap is only in the old copy (oldfd); link it
 * into the live one (newfd) before the copy is removed. */
static void carry_late_files(int oldfd, int newfd, const char *dir)
{
	DIR *d = dir_of(oldfd);
	struct dirent *e;
	struct stat st;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(newfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT &&
		    linkat(oldfd, e->d_name, newfd, e->d_name, 0) == 0)
			log_warn("%s/%s appeared while the directory was swapped; kept", dir, e->d_name);
	}
	closedir(d);
}

/* Each file gets the mode and owner the directory (dfd, -1 when it does
 * not exist) gave it before any of them was written: a new file follows
 * what its siblings were, not what this run made of them. */
static int write_set_fallback(const char *dir, int dfd, const struct af_file *files,
			      const struct af_keep *keep, size_t n, const char *stamp)
{
	struct attrs *a = calloc(n, sizeof(*a));
	int r = 0;

	if (a == NULL)
		return SFTCA_ERR_NOMEM;
	log_warn("%s: cannot swap the directory atomically; replacing %zu files one by one",
		 dir, n);
	for (size_t i = 0; i < n; i++)
		resolve_attrs(dfd, dir, &files[i], keep ? &keep[i] : NULL, &a[i]);
	for (size_t i = 0; i < n && r == 0; i++)
		r = write_one(dir, 1, &files[i], NULL, stamp, &a[i]);
	free(a);
	return r;
}

/* Split a trimmed path into its parent (opened, followed: the caller vouches
 * for it) and its last component. */
static int open_parent(const char *path, char *parent, size_t plen, const char **base, int *pfd)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL) {
		snprintf(parent, plen, ".");
		*base = path;
	} else {
		size_t n = slash == path ? 1 : (size_t)(slash - path);
		if (n >= plen)
			return SFTCA_ERR_INVALID;
		memcpy(parent, path, n);
		parent[n] = '\0';
		*base = slash + 1;
	}
	if (**base == '\0' || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0)
		return SFTCA_ERR_INVALID;
	if ((*pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		log_error("%s: %s", parent, strerror(errno));
		return errno == EACCES ? SFTCA_ERR_DENIED : SFTCA_ERR_IO;
	}
	return 0;
}

static int write_set(const char *dir, const struct af_file *files, const struct af_keep *keep,
		     size_t n, const char *backup_stamp)
{
	char path[PATH_MAX], parent[PATH_MAX], stage[NAME_MAX + 1], shown[PATH_MAX];
	const char *base;
	struct stat st;
	int r, exists, pfd = -1, dfd = -1, sfd = -1, staged = 0;

	if ((r = trim_dir(dir, path, sizeof(path))) != 0 ||
	    (r = open_parent(path, parent, sizeof(parent), &base, &pfd)) != 0)
		return r;
	remove_stale_stages(pfd, base, parent);
	dfd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 && (r = open_dir_error(pfd, base, path)) != SFTCA_ERR_NOT_FOUND)
		goto out;
	exists = dfd >= 0;
	if (exists && fstat(dfd, &st) != 0) {
		r = SFTCA_ERR_IO;
		goto out;
	}
	if ((r = make_stage(pfd, base, stage, sizeof(stage))) != 0) {
		log_error("%s: no stage directory beside it: %s", path, sftca_strerror(r));
		goto out;
	}
	staged = 1;
	shown_path(shown, parent, stage);
	if ((sfd = openat(pfd, stage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		r = SFTCA_ERR_IO;
		goto out;
	}
	if (exists && (r = populate_stage(dfd, sfd, shown, files, n, backup_stamp)) != 0)
		goto fallback_or_fail;
	for (size_t i = 0; i < n; i++) {
		struct attrs a;
		resolve_attrs(dfd, path, &files[i], keep ? &keep[i] : NULL, &a);
		if (strchr(files[i].name, '/') != NULL ||
		    (r = write_new_file(sfd, shown, files[i].name, &files[i], &a)) != 0) {
			r = r ? r : SFTCA_ERR_INVALID;
			goto out;
		}
	}
	/* The stage takes the live directory's mode and owner, on its descriptor. */
	if ((exists && (fchmod(sfd, st.st_mode & 07777) != 0 ||
			(fchown(sfd, st.st_uid, st.st_gid) != 0 && geteuid() == 0))) ||
	    (!exists && fchmod(sfd, 0755) != 0)) {
		r = SFTCA_ERR_IO;
		goto out;
	}
	if ((r = fsync(sfd) != 0 ? SFTCA_ERR_IO : 0) != 0 || (r = failpoint("atomic.rename")) != 0)
		goto out;
	if (!exists) {
		if (renameat(pfd, stage, pfd, base) != 0) {
			log_error("rename %s to %s: %s", shown, path, strerror(errno));
			r = SFTCA_ERR_IO;
			goto out;
		}
	} else if (renameat2(pfd, stage, pfd, base, RENAME_EXCHANGE) != 0) {
		r = errno == EINVAL || errno == ENOSYS ? SFTCA_ERR_PRECONDITION : SFTCA_ERR_IO;
		goto fallback_or_fail;
	}
	if ((r = failpoint("atomic.dirsync")) != 0 || (r = fsync(pfd) != 0 ? SFTCA_ERR_IO : 0) != 0)
		log_error("fsync of directory %s failed", parent);
	/* After an exchange the stage name holds the old directory, every file
	 * of which is also linked from the new one (but for late arrivals,
	 * carried over now). */
	if (exists)
		carry_late_files(dfd, sfd, path);
	if (exists && remove_stage(pfd, stage, shown) != 0)
		log_warn("%s: could not remove the old directory copy", shown);
	staged = 0;
	goto out;

fallback_or_fail:
	if (r == SFTCA_ERR_PRECONDITION) {
		remove_stage(pfd, stage, shown);
		staged = 0;
		r = write_set_fallback(path, dfd, files, keep, n, backup_stamp);
	}
out:
	if (staged)
		remove_stage(pfd, stage, shown);
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	close(pfd);
	return r;
}

int af_write_set(const char *dir, const struct af_file *files, size_t n, const char *backup_stamp)
{
	return write_set(dir, files, NULL, n, backup_stamp);
}

int af_write_set_keep(const char *dir, const struct af_file *files, const struct af_keep *keep,
		      size_t n, const char *backup_stamp)
{
	return write_set(dir, files, keep, n, backup_stamp);
}
