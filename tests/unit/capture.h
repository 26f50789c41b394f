/* For unit tests: run a function with its stderr captured, to check the
 * messages it logs. */
#ifndef SFTCA_TEST_CAPTURE_H
#define SFTCA_TEST_CAPTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Call fn(arg) with file descriptor 2 on a pipe and leave what it wrote in
 * buf (NUL-terminated, at most len - 1 bytes; it must fit a pipe, 64 KiB).
 * Returns what fn returned. */
static int capture_stderr(int (*fn)(void *), void *arg, char *buf, size_t len)
{
	int pipefd[2], saved, r;
	ssize_t n;

	if (pipe(pipefd) != 0)
		abort();
	fflush(stderr);
	saved = dup(2);
	dup2(pipefd[1], 2);
	r = fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(pipefd[1]);
	n = read(pipefd[0], buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	return r;
}

#endif
