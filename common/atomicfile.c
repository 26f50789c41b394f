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

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return SFTCA_ERR_IO;
	if (fsync(fd) != 0)
		r = SFTCA_ERR_IO;
	close(fd);
	return r;
}

/* Write data to a new file at path (must not exist), fsync it. */
static int write_new_file(const char *path, const struct af_file *f)
{
	int fd, r;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, f->mode & 0600);
	if (fd < 0) {
		log_error("%s: %s", path, strerror(errno));
		return errno == EACCES || errno == EROFS ? SFTCA_ERR_DENIED : SFTCA_ERR_IO;
	}
	/* Explicit mode: the umask must not widen or narrow what was asked. */
	if (fchmod(fd, f->mode) != 0 || (r = failpoint("atomic.write")) != 0 ||
	    (r = write_all(fd, f->data, f->len)) != 0 || (r = failpoint("atomic.fsync")) != 0 ||
	    fsync(fd) != 0) {
		log_error("%s: write failed: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return SFTCA_ERR_IO;
	}
	if (close(fd) != 0) {
		unlink(path);
		return SFTCA_ERR_IO;
	}
	return 0;
}

/* Hard-link src as "<dstdir>/<name>.backup.<stamp>[.N]". */
static int link_backup(const char *src, const char *dstdir, const char *name, const char *stamp)
{
	char path[PATH_MAX];

	for (int i = 0; i < 1000; i++) {
		int n = i == 0 ? snprintf(path, sizeof(path), "%s/%s.backup.%s", dstdir, name, stamp)
			       : snprintf(path, sizeof(path), "%s/%s.backup.%s.%d", dstdir, name,
					  stamp, i);
		if (n < 0 || (size_t)n >= sizeof(path))
			return SFTCA_ERR_INVALID;
		if (link(src, path) == 0)
			return 0;
		if (errno != EEXIST) {
			log_error("backup of %s as %s: %s", src, path, strerror(errno));
			return SFTCA_ERR_IO;
		}
	}
	return SFTCA_ERR_EXISTS;
}

/* Temporary files of writers that died (kill -9, power loss): their pid is
 * gone, so nobody will rename them any more. */
static void remove_stale_tmp(const char *dir, const char *name)
{
	char prefix[300];
	size_t plen;
	struct dirent *e;
	DIR *d;

	plen = (size_t)snprintf(prefix, sizeof(prefix), ".%s.sftca-tmp.", name);
	if (plen >= sizeof(prefix) || (d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid;

		if (strncmp(e->d_name, prefix, plen) != 0)
			continue;
		pid = strtol(e->d_name + plen, &end, 10);
		if (*end == '\0' && pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

int af_write(const char *dir, const struct af_file *f, const char *backup_stamp)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	int n, r;

	n = snprintf(path, sizeof(path), "%s/%s", dir, f->name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return SFTCA_ERR_INVALID;
	n = snprintf(tmp, sizeof(tmp), "%s/.%s.sftca-tmp.%ld", dir, f->name, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return SFTCA_ERR_INVALID;
	unlink(tmp); /* left over by a crashed run that had our pid */
	remove_stale_tmp(dir, f->name);
	if ((r = write_new_file(tmp, f)) != 0)
		return r;
	if (backup_stamp != NULL && lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    (r = link_backup(path, dir, f->name, backup_stamp)) != 0)
		goto fail;
	if ((r = failpoint("atomic.rename")) != 0)
		goto fail;
	if (rename(tmp, path) != 0) {
		log_error("rename %s to %s: %s", tmp, path, strerror(errno));
		r = SFTCA_ERR_IO;
		goto fail;
	}
	if ((r = failpoint("atomic.dirsync")) != 0 || (r = fsync_path(dir)) != 0) {
		log_error("fsync of directory %s failed", dir);
		return r;
	}
	return 0;
fail:
	unlink(tmp);
	return r;
}

int af_retire(const char *dir, const char *name, const char *backup_stamp, int *moved)
{
	char path[PATH_MAX];
	struct stat st;
	int n, r;

	*moved = 0;
	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return SFTCA_ERR_INVALID;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : SFTCA_ERR_IO;
	if (!S_ISREG(st.st_mode)) {
		log_error("%s is not a regular file; left as it is", path);
		return SFTCA_ERR_INVALID;
	}
	if ((r = link_backup(path, dir, name, backup_stamp)) != 0)
		return r;
	if (unlink(path) != 0) {
		log_error("removing %s (kept as a backup): %s", path, strerror(errno));
		return SFTCA_ERR_IO;
	}
	if ((r = fsync_path(dir)) != 0)
		return r;
	*moved = 1;
	return 0;
}

/* Remove the regular files in dir and dir itself (a stage we made). A
 * symbolic link in its place is not followed: that would empty whatever
 * directory it names. */
static int remove_stage(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	int r = 0;

	if (d == NULL) {
		int e0 = errno;
		if (fd >= 0)
			close(fd);
		if (e0 == ENOENT)
			return 0;
		log_error("%s: %s; not a stage this program made, left alone", dir,
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
	if (r == 0 && rmdir(dir) != 0)
		r = SFTCA_ERR_IO;
	return r;
}

static int is_target(const struct af_file *files, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(files[i].name, name) == 0)
			return 1;
	return 0;
}

/* Link every other regular file of dir into stage, then back up the
 * targets (second pass, so a backup name never collides with a file still
 * to be carried over). SFTCA_ERR_PRECONDITION when an entry cannot be
 * carried over by a link. */
static int populate_stage(const char *dir, const char *stage, const struct af_file *files,
			  size_t n, const char *stamp)
{
	char src[PATH_MAX], dst[PATH_MAX];
	DIR *d = opendir(dir);
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
			if (snprintf(src, sizeof(src), "%s/%s", dir, e->d_name) >= (int)sizeof(src) ||
			    snprintf(dst, sizeof(dst), "%s/%s", stage, e->d_name) >=
				    (int)sizeof(dst)) {
				r = SFTCA_ERR_INVALID;
				break;
			}
			if (lstat(src, &st) != 0 || !S_ISREG(st.st_mode)) {
				r = SFTCA_ERR_PRECONDITION;
				break;
			}
			target = is_target(files, n, e->d_name);
			if (pass == 0 && !target && link(src, dst) != 0)
				r = errno == EEXIST ? SFTCA_ERR_IO : SFTCA_ERR_PRECONDITION;
			else if (pass == 1 && target && stamp != NULL)
				r = link_backup(src, stage, e->d_name, stamp);
		}
	}
	closedir(d);
	return r;
}

/* After the swap: a file another process created in the directory between
 * populate_stage() and the swap is only in the old copy; link it into the
 * live directory before the copy is removed. */
static void carry_late_files(const char *old, const char *dir)
{
	char src[PATH_MAX], dst[PATH_MAX];
	DIR *d = opendir(old);
	struct dirent *e;
	struct stat st;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    snprintf(src, sizeof(src), "%s/%s", old, e->d_name) >= (int)sizeof(src) ||
		    snprintf(dst, sizeof(dst), "%s/%s", dir, e->d_name) >= (int)sizeof(dst))
			continue;
		if (lstat(dst, &st) != 0 && errno == ENOENT && link(src, dst) == 0)
			log_warn("%s appeared while the directory was swapped; kept", dst);
	}
	closedir(d);
}

static int write_set_fallback(const char *dir, const struct af_file *files, size_t n,
			      const char *stamp)
{
	int r;

	log_warn("%s: cannot swap the directory atomically; replacing %zu files one by one",
		 dir, n);
	for (size_t i = 0; i < n; i++)
		if ((r = af_write(dir, &files[i], stamp)) != 0)
			return r;
	return 0;
}

int af_write_set(const char *dir, const struct af_file *files, size_t n, const char *backup_stamp)
{
	char stage[PATH_MAX], path[PATH_MAX], parent[PATH_MAX];
	struct stat st;
	char *slash;
	int r, exists;

	if (snprintf(stage, sizeof(stage), "%s.sftca-stage", dir) >= (int)sizeof(stage) ||
	    snprintf(parent, sizeof(parent), "%s", dir) >= (int)sizeof(parent))
		return SFTCA_ERR_INVALID;
	if ((slash = strrchr(parent, '/')) == NULL)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	/* A stage left by a crash holds only links and new files (before the
	 * swap) or links to what the live directory also links (after it):
	 * removing it loses nothing. */
	if ((r = remove_stage(stage)) != 0) {
		log_error("%s: cannot remove a stale stage directory", stage);
		return r;
	}
	exists = stat(dir, &st) == 0;
	if (exists && !S_ISDIR(st.st_mode))
		return SFTCA_ERR_INVALID;
	if (mkdir(stage, 0700) != 0) {
		log_error("%s: %s", stage, strerror(errno));
		return errno == EACCES || errno == EROFS ? SFTCA_ERR_DENIED : SFTCA_ERR_IO;
	}
	if (exists && (r = populate_stage(dir, stage, files, n, backup_stamp)) != 0)
		goto fallback_or_fail;
	for (size_t i = 0; i < n; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", stage, files[i].name) >= (int)sizeof(path)) {
			r = SFTCA_ERR_INVALID;
			goto fail;
		}
		if ((r = write_new_file(path, &files[i])) != 0)
			goto fail;
	}
	if ((exists && (chmod(stage, st.st_mode & 07777) != 0 ||
			(chown(stage, st.st_uid, st.st_gid) != 0 && geteuid() == 0))) ||
	    (!exists && chmod(stage, 0755) != 0)) {
		r = SFTCA_ERR_IO;
		goto fail;
	}
	if ((r = fsync_path(stage)) != 0 || (r = failpoint("atomic.rename")) != 0)
		goto fail;
	if (!exists) {
		if (rename(stage, dir) != 0) {
			r = SFTCA_ERR_IO;
			goto fail;
		}
	} else if (renameat2(AT_FDCWD, stage, AT_FDCWD, dir, RENAME_EXCHANGE) != 0) {
		r = errno == EINVAL || errno == ENOSYS ? SFTCA_ERR_PRECONDITION : SFTCA_ERR_IO;
		goto fallback_or_fail;
	}
	if ((r = failpoint("atomic.dirsync")) != 0 || (r = fsync_path(parent)) != 0)
		return r;
	/* The stage now holds the old directory, every file of which is also
	 * linked from the new one (but for late arrivals, carried over now). */
	if (exists)
		carry_late_files(stage, dir);
	if (exists && remove_stage(stage) != 0)
		log_warn("%s: could not remove the old directory copy", stage);
	return 0;

fallback_or_fail:
	if (r == SFTCA_ERR_PRECONDITION) {
		remove_stage(stage);
		return write_set_fallback(dir, files, n, backup_stamp);
	}
fail:
	remove_stage(stage);
	return r;
}
