#include "fileio.h"

#include "errors.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return SFTCA_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read from an open fd; st must describe it. */
static int read_fd(int fd, const char *path, const struct stat *st, size_t max, char **buf,
		   size_t *len)
{
	char *b;
	size_t off = 0, cap;

	if (!S_ISREG(st->st_mode)) {
		log_error("%s: not a regular file", path);
		return SFTCA_ERR_INVALID;
	}
	if ((unsigned long long)st->st_size > max) {
		log_error("%s: %lld bytes, more than the %zu allowed", path,
			  (long long)st->st_size, max);
		return SFTCA_ERR_LIMIT;
	}
	cap = (size_t)st->st_size + 1;
	if ((b = malloc(cap)) == NULL)
		return SFTCA_ERR_NOMEM;
	for (;;) {
		ssize_t n = read(fd, b + off, cap - off - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("%s: read: %s", path, strerror(errno));
			OPENSSL_cleanse(b, cap);
			free(b);
			return SFTCA_ERR_IO;
		}
		if (n == 0)
			break;
		off += (size_t)n;
		if (off == cap - 1) {
			/* The file grew while we read it; refuse rather than truncate. */
			char extra;
			if (read(fd, &extra, 1) > 0) {
				log_error("%s: file changed while being read", path);
				OPENSSL_cleanse(b, cap);
				free(b);
				return SFTCA_ERR_IO;
			}
			break;
		}
	}
	b[off] = '\0';
	*buf = b;
	*len = off;
	return 0;
}

int file_read_all(const char *path, size_t max, char **buf, size_t *len)
{
	struct stat st;
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		log_error("%s: %s", path, strerror(errno));
		return errno == ENOENT ? SFTCA_ERR_NOT_FOUND : SFTCA_ERR_IO;
	}
	if (fstat(fd, &st) != 0) {
		log_error("%s: %s", path, strerror(errno));
		close(fd);
		return SFTCA_ERR_IO;
	}
	r = read_fd(fd, path, &st, max, buf, len);
	close(fd);
	return r;
}

int secret_read_file(const char *path, char **secret, size_t *len)
{
	struct stat st;
	char *b = NULL;
	size_t n = 0;
	int fd, r;

	*secret = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		log_error("secret file %s: %s", path, strerror(errno));
		return errno == ENOENT ? SFTCA_ERR_NOT_FOUND : SFTCA_ERR_IO;
	}
	if (fstat(fd, &st) != 0) {
		close(fd);
		return SFTCA_ERR_IO;
	}
	/* Checked on the open descriptor, so the file cannot be swapped between
	 * the check and the read. */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		log_error("secret file %s has mode %04o: it must not be accessible by group or "
			  "others (chmod 600 %s)",
			  path, (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return SFTCA_ERR_FILE_MODE;
	}
	r = read_fd(fd, path, &st, 4096, &b, &n);
	close(fd);
	if (r != 0)
		return r;
	(void)mlock(b, n + 1);
	if (n > 0 && b[n - 1] == '\n') {
		b[--n] = '\0';
		if (n > 0 && b[n - 1] == '\r')
			b[--n] = '\0';
	}
	if (n == 0) {
		log_error("secret file %s is empty", path);
		secret_free(b, 1);
		return SFTCA_ERR_INVALID;
	}
	*secret = b;
	*len = n;
	return 0;
}

void secret_free(char *secret, size_t len)
{
	if (secret == NULL)
		return;
	/* Wipe the secret and its terminator; a stripped newline after it is
	 * not secret. */
	OPENSSL_cleanse(secret, len + 1);
	/* Left locked: locks are per page and not counted, so munlock() would
	 * also unlock other secrets sharing the page (the passwords read
	 * from this file, say). */
	free(secret);
}

int mkdir_p(const char *path, unsigned mode)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return SFTCA_ERR_INVALID;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return SFTCA_ERR_IO;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return SFTCA_ERR_IO;
	return 0;
}
