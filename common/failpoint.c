#include "failpoint.h"

/* Release builds (SFTCA_TEST_HOOKS off) carry no fault injection at all:
 * an environment variable must not be able to kill or fail a CA. */
#ifndef SFTCA_TEST_HOOKS
int failpoint(const char *name)
{
	(void)name;
	return 0;
}

void failpoint_reload(void)
{
}
#else

#include "errors.h"
#include "log.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FP_MAX 16

struct fp {
	char name[64];
	int kill;
	long at;          /* fire on this hit (1-based) */
	atomic_long hits;
};

static struct fp fps[FP_MAX];
static int nfps;
static pthread_mutex_t fp_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int fp_parsed;

/* One NAME=ACTION[@N] entry (NUL-terminated) into fps[nfps]. */
static void fp_add(char *tok)
{
	char *eq = strchr(tok, '='), *at;
	struct fp *f = &fps[nfps];

	if (eq == NULL || (size_t)(eq - tok) >= sizeof(f->name))
		return;
	memcpy(f->name, tok, (size_t)(eq - tok));
	f->name[eq - tok] = '\0';
	f->at = 1;
	if ((at = strchr(eq + 1, '@')) != NULL) {
		char *end;
		*at = '\0';
		f->at = strtol(at + 1, &end, 10);
		if (*end != '\0' || f->at < 1)
			return;
	}
	if (strcmp(eq + 1, "kill") == 0)
		f->kill = 1;
	else if (strcmp(eq + 1, "error") != 0)
		return;
	atomic_init(&f->hits, 0);
	nfps++;
}

static void fp_parse(void)
{
	const char *env = getenv("SFTCA_FAILPOINTS");
	char buf[1024], *p, *comma;

	if (env == NULL || strlen(env) >= sizeof(buf))
		return;
	memcpy(buf, env, strlen(env) + 1);
	for (p = buf; p != NULL && nfps < FP_MAX; p = comma ? comma + 1 : NULL) {
		if ((comma = strchr(p, ',')) != NULL)
			*comma = '\0';
		fp_add(p);
	}
}

void failpoint_reload(void)
{
	pthread_mutex_lock(&fp_mu);
	nfps = 0;
	memset(fps, 0, sizeof(fps));
	fp_parse();
	atomic_store(&fp_parsed, 1);
	pthread_mutex_unlock(&fp_mu);
}

int failpoint(const char *name)
{
	if (!atomic_load(&fp_parsed)) {
		pthread_mutex_lock(&fp_mu);
		if (!atomic_load(&fp_parsed)) {
			fp_parse();
			atomic_store(&fp_parsed, 1);
		}
		pthread_mutex_unlock(&fp_mu);
	}
	for (int i = 0; i < nfps; i++) {
		if (strcmp(fps[i].name, name) != 0)
			continue;
		if (atomic_fetch_add(&fps[i].hits, 1) + 1 != fps[i].at)
			return 0;
		if (fps[i].kill) {
			/* Straight to the kernel: no atexit, no flush, like a real crash. */
			kill(getpid(), SIGKILL);
			pause();
		}
		log_warn("failpoint %s: injected error", name);
		return SFTCA_ERR_IO;
	}
	return 0;
}
#endif
