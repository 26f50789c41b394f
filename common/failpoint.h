/* Fault injection for crash-safety tests. Armed only through the
 * environment variable SFTCA_FAILPOINTS, a comma-separated list of
 * NAME=ACTION[@N]: ACTION "kill" sends SIGKILL to this process, "error"
 * makes failpoint() return SFTCA_ERR_IO; @N fires on the Nth hit only
 * (default: the first). Compiled in only with -DSFTCA_TEST_HOOKS=ON (test
 * builds); otherwise failpoint() always returns 0 and the variable is
 * ignored. */
#ifndef SFTCA_FAILPOINT_H
#define SFTCA_FAILPOINT_H

/* 0 normally; SFTCA_ERR_IO when NAME is armed with "error"; never returns
 * when armed with "kill". */
int failpoint(const char *name) __attribute__((warn_unused_result));
/* Read SFTCA_FAILPOINTS again (tests that fork after changing it). */
void failpoint_reload(void);

#endif
