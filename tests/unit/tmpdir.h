/* For unit tests: a private directory under /tmp per test, removed after. */
#ifndef SFTCA_TEST_TMPDIR_H
#define SFTCA_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

/* dir (64 bytes) becomes a new /tmp/sftca-NAME.XXXXXX; aborts on failure. */
static void tmpdir_make(char dir[64], const char *name)
{
	if ((size_t)snprintf(dir, 64, "/tmp/sftca-%s.XXXXXX", name) >= 64 || mkdtemp(dir) == NULL)
		abort();
}

/* 0 when dir and everything in it are gone. */
static int tmpdir_remove(const char *dir)
{
	char cmd[128];

	if ((size_t)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir) >= sizeof(cmd))
		return -1;
	return system(cmd);
}

#endif
