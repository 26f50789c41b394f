/* SFTCA_FAILPOINTS is honoured only by test builds. This file is built
 * twice with common/failpoint.c: with SFTCA_TEST_HOOKS (unit_failpoint:
 * an armed point fires, kill included) and without (unit_failpoint_release,
 * the release configuration: every armed point is ignored). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errors.h"
#include "failpoint.h"
#include "log.h"

static void armed_error(void **state)
{
	(void)state;
	setenv("SFTCA_FAILPOINTS", "unit.err=error,unit.other=error@2", 1);
	failpoint_reload();
#ifdef SFTCA_TEST_HOOKS
	assert_int_equal(failpoint("unit.err"), SFTCA_ERR_IO);
	assert_int_equal(failpoint("unit.other"), 0);
	assert_int_equal(failpoint("unit.other"), SFTCA_ERR_IO);
#else
	assert_int_equal(failpoint("unit.err"), 0);
	assert_int_equal(failpoint("unit.other"), 0);
	assert_int_equal(failpoint("unit.other"), 0);
#endif
	assert_int_equal(failpoint("unit.unarmed"), 0);
}

static void armed_kill(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	if ((pid = fork()) == 0) {
		setenv("SFTCA_FAILPOINTS", "unit.kill=kill", 1);
		failpoint_reload();
		_exit(failpoint("unit.kill") == 0 ? 0 : 2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
#ifdef SFTCA_TEST_HOOKS
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
#else
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(armed_error),
		cmocka_unit_test(armed_kill),
	};
	log_init("test", LOG_STYLE_CLI, LOG_LVL_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
