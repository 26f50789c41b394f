/* Reading files whole, and secrets (PINs, passwords) with their mode checked. */
#ifndef SFTCA_FILEIO_H
#define SFTCA_FILEIO_H

#include <stddef.h>

/* Read a regular file of at most max bytes into a NUL-terminated buffer
 * (*len excludes the NUL). SFTCA_ERR_LIMIT if larger. */
int file_read_all(const char *path, size_t max, char **buf, size_t *len)
	__attribute__((warn_unused_result));

/* Read a secret from a regular file that no group or other may access
 * (SFTCA_ERR_FILE_MODE otherwise); strips one trailing newline (and a CR
 * before it). The buffer is locked in memory where permitted; release it
 * with secret_free(), which wipes it. */
int secret_read_file(const char *path, char **secret, size_t *len)
	__attribute__((warn_unused_result));

/* Wipe and free a secret of len bytes (the NUL included by the caller's
 * count or not: the whole allocation is wiped). NULL is a no-op. */
void secret_free(char *secret, size_t len);

/* Write a whole buffer to fd, retrying short writes. */
int write_all(int fd, const void *buf, size_t len) __attribute__((warn_unused_result));

/* Create a directory and its parents with the given mode (like mkdir -p). */
int mkdir_p(const char *path, unsigned mode) __attribute__((warn_unused_result));

#endif
