/* Shared by the libFuzzer targets: logging set-up and the checks that turn
 * a broken promise of a parser into a crash libFuzzer can report. */
#ifndef SFTCA_FUZZ_COMMON_H
#define SFTCA_FUZZ_COMMON_H

#include "log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The product logs at debug level so that every message is formatted (and
 * checked by ASan's printf interceptors). run-ci.sh and run-long.sh pass
 * -close_fd_mask=2 so the lines cost a failed write(2) only; a reproducer
 * run by hand shows them. SFTCA_FUZZ_LOG=quiet|error|warn|info|debug. */
static inline void fuzz_log_setup(const char *ident)
{
	const char *v = getenv("SFTCA_FUZZ_LOG");
	enum log_level l = LOG_LVL_DEBUG;

	if (v != NULL && strcmp(v, "quiet") == 0)
		l = LOG_LVL_QUIET;
	else if (v != NULL && strcmp(v, "error") == 0)
		l = LOG_LVL_ERROR;
	else if (v != NULL && strcmp(v, "warn") == 0)
		l = LOG_LVL_WARN;
	else if (v != NULL && strcmp(v, "info") == 0)
		l = LOG_LVL_INFO;
	log_init(ident, LOG_STYLE_CLI, l);
}

/* A broken invariant: report it and abort, so libFuzzer saves the input. */
#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* s is NUL-terminated within cap bytes. */
static inline int fuzz_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

#endif
