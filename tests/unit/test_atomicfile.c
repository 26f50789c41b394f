/* Atomic replacement: a fault or a kill at each step (write, fsync,
 * rename, directory fsync) leaves the old content or the new, never a mix;
 * pairs change together; backups are never overwritten. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomicfile.h"
#include "capture.h"
#include "errors.h"
#include "failpoint.h"
#include "fileio.h"
#include "log.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/sftca-af.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];
	(void)state;
	assert_true((size_t)snprintf(cmd, sizeof(cmd), "rm -rf %s %s.sftca-stage*", dir, dir) < sizeof(cmd));
	assert_int_equal(system(cmd), 0);
	return 0;
}

static char *slurp(const char *name)
{
	char path[256], *buf = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_read_all(path, 1 << 20, &buf, &len) != 0)
		return NULL;
	return buf;
}

static int count_entries(const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)) != NULL)
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static void put(const char *name, const char *text, unsigned mode, const char *stamp)
{
	struct af_file f = { name, text, strlen(text), mode };
	assert_int_equal(af_write(dir, &f, stamp), 0);
}

static void write_backup_mode(void **state)
{
	struct stat st;
	char path[256], *s;

	(void)state;
	put("key.pem", "OLD", 0600, "20261128T000000Z");
	put("key.pem", "NEW", 0600, "20261128T000000Z");
	put("key.pem", "NEWER", 0600, "20261128T000000Z");
	s = slurp("key.pem");
	assert_string_equal(s, "NEWER");
	free(s);
	s = slurp("key.pem.backup.20261128T000000Z");
	assert_string_equal(s, "OLD");
	free(s);
	/* Same stamp again: a new name, the first backup untouched. */
	s = slurp("key.pem.backup.20261128T000000Z.1");
	assert_string_equal(s, "NEW");
	free(s);
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	snprintf(path, sizeof(path), "%s/key.pem.backup.20261128T000000Z", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(count_entries(".key.pem.sftca-tmp"), 0);
}

/* In a child, arm a failpoint (kill or error) and replace a pair; the
 * parent checks what is on disk. */
static void fault_at(const char *failpoint, const char *action, int pair)
{
	char env[128], *c, *k;
	pid_t pid;
	int status;

	put("cert.pem", "OLD-CERT", 0644, NULL);
	put("key.pem", "OLD-KEY", 0600, NULL);
	snprintf(env, sizeof(env), "%s=%s", failpoint, action);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		struct af_file files[2] = { { "key.pem", "NEW-KEY", 7, 0600 },
					    { "cert.pem", "NEW-CERT", 8, 0644 } };
		setenv("SFTCA_FAILPOINTS", env, 1);
		failpoint_reload();
		log_init("child", LOG_STYLE_CLI, LOG_LVL_QUIET);
		_exit(pair ? af_write_set(dir, files, 2, "20261128T000001Z") != 0
			   : af_write(dir, &files[1], "20261128T000001Z") != 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (strcmp(action, "kill") == 0)
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	else
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	c = slurp("cert.pem");
	k = slurp("key.pem");
	assert_non_null(c);
	assert_non_null(k);
	/* Old or new, and for a pair both the same age. */
	if (strcmp(c, "NEW-CERT") == 0) {
		assert_true(strcmp(failpoint, "atomic.dirsync") == 0);
		if (pair)
			assert_string_equal(k, "NEW-KEY");
	} else {
		assert_string_equal(c, "OLD-CERT");
		assert_string_equal(k, "OLD-KEY");
	}
	free(c);
	free(k);
	/* The next writer cleans up and succeeds. */
	{
		struct af_file files[2] = { { "key.pem", "NEW-KEY", 7, 0600 },
					    { "cert.pem", "NEW-CERT", 8, 0644 } };
		assert_int_equal(pair ? af_write_set(dir, files, 2, NULL) : af_write(dir, &files[1], NULL), 0);
		c = slurp("cert.pem");
		assert_string_equal(c, "NEW-CERT");
		free(c);
		assert_int_equal(count_entries(".cert.pem.sftca-tmp"), 0);
	}
}

static void faults_single_file(void **state)
{
	static const char *const fps[] = { "atomic.write", "atomic.fsync", "atomic.rename",
					   "atomic.dirsync" };
	(void)state;
	for (size_t i = 0; i < 4; i++) {
		fault_at(fps[i], "kill", 0);
		fault_at(fps[i], "error", 0);
	}
}

static void faults_pair(void **state)
{
	static const char *const fps[] = { "atomic.write", "atomic.fsync", "atomic.rename",
					   "atomic.dirsync" };
	(void)state;
	for (size_t i = 0; i < 4; i++) {
		fault_at(fps[i], "kill", 1);
		fault_at(fps[i], "error", 1);
	}
}

static void pair_keeps_other_files_and_backs_up(void **state)
{
	struct af_file files[2] = { { "key.pem", "K2", 2, 0600 }, { "cert.pem", "C2", 2, 0644 } };
	struct stat st;
	char path[256], *s;

	(void)state;
	put("key.pem", "K1", 0600, NULL);
	put("cert.pem", "C1", 0644, NULL);
	put("sftunnel.json", "{}", 0644, NULL);
	assert_int_equal(af_write_set(dir, files, 2, "20261128T000002Z"), 0);
	s = slurp("sftunnel.json");
	assert_string_equal(s, "{}");
	free(s);
	s = slurp("key.pem.backup.20261128T000002Z");
	assert_string_equal(s, "K1");
	free(s);
	s = slurp("cert.pem.backup.20261128T000002Z");
	assert_string_equal(s, "C1");
	free(s);
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	{ /* no stage left behind, beside dir */
		glob_t g;
		snprintf(path, sizeof(path), "%s.sftca-stage*", dir);
		assert_int_equal(glob(path, 0, NULL, &g), GLOB_NOMATCH);
	}
}

static void pair_creates_missing_directory(void **state)
{
	struct af_file files[2] = { { "key.pem", "K", 1, 0600 }, { "cert.pem", "C", 1, 0644 } };
	char sub[128], path[160], *buf = NULL;
	size_t len;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/certs_pushed", dir);
	assert_int_equal(af_write_set(sub, files, 2, NULL), 0);
	snprintf(path, sizeof(path), "%s/cert.pem", sub);
	assert_int_equal(file_read_all(path, 100, &buf, &len), 0);
	assert_string_equal(buf, "C");
	free(buf);
}

static void touch(const char *path)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fclose(f), 0);
}

/* The stage's name is random: a symbolic link planted at the name older
 * versions used (DIR.sftca-stage) is neither followed nor in the way. */
static void predictable_stage_name_unused(void **state)
{
	struct af_file files[2] = { { "key.pem", "K", 1, 0600 }, { "cert.pem", "C", 1, 0644 } };
	char sub[128], victim[128], stage[160], path[200], *buf = NULL;
	struct stat st;
	size_t len;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/certs_pushed", dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	snprintf(stage, sizeof(stage), "%s.sftca-stage", sub);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(mkdir(victim, 0755), 0);
	snprintf(path, sizeof(path), "%s/precious", victim);
	touch(path);
	assert_int_equal(symlink(victim, stage), 0);
	assert_int_equal(af_write_set(sub, files, 2, NULL), 0);
	assert_int_equal(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/key.pem", victim);
	assert_int_not_equal(lstat(path, &st), 0);
	assert_int_equal(lstat(stage, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	snprintf(path, sizeof(path), "%s/cert.pem", sub);
	assert_int_equal(file_read_all(path, 100, &buf, &len), 0);
	assert_string_equal(buf, "C");
	free(buf);
	assert_int_equal(unlink(stage), 0);
}

/* A directory written into that is a symbolic link is refused by the pair
 * writer and af_write_nofollow: its target gets nothing. */
static void dir_symlink_refused(void **state)
{
	struct af_file files[2] = { { "key.pem", "K", 1, 0600 }, { "cert.pem", "C", 1, 0644 } };
	char sub[128], victim[128], path[200];
	struct stat st;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/certs_pushed", dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	assert_int_equal(mkdir(victim, 0755), 0);
	snprintf(path, sizeof(path), "%s/cert.pem", victim);
	touch(path);
	assert_int_equal(symlink(victim, sub), 0);
	assert_int_equal(af_write_set(sub, files, 2, "20261128T000003Z"), SFTCA_ERR_INVALID);
	assert_int_equal(af_write_nofollow(sub, &files[1], "20261128T000003Z"), SFTCA_ERR_INVALID);
	snprintf(path, sizeof(path), "%s/", sub); /* a trailing slash does not get it through */
	assert_int_equal(af_write_nofollow(path, &files[1], "20261128T000003Z"), SFTCA_ERR_INVALID);
	snprintf(path, sizeof(path), "%s/key.pem", victim);
	assert_int_not_equal(lstat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/cert.pem", victim);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	snprintf(path, sizeof(path), "%s/cert.pem.backup.20261128T000003Z", victim);
	assert_int_not_equal(lstat(path, &st), 0);
	assert_int_equal(count_entries("certs_pushed.sftca-stage"), 0);
	assert_int_equal(unlink(sub), 0);
}

/* A stage whose run died is removed by the next writer; one of a running
 * process is left to it. */
static void stale_stage_removed(void **state)
{
	struct af_file files[2] = { { "key.pem", "K", 1, 0600 }, { "cert.pem", "C", 1, 0644 } };
	char sub[128], dead[200], live[200], path[260];
	struct stat st;
	pid_t pid;
	int status;

	(void)state;
	if ((pid = fork()) == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	snprintf(sub, sizeof(sub), "%s/certs_pushed", dir);
	snprintf(dead, sizeof(dead), "%s.sftca-stage.%ld.AbC123", sub, (long)pid);
	snprintf(live, sizeof(live), "%s.sftca-stage.1.XyZ789", sub);
	assert_int_equal(mkdir(dead, 0700), 0);
	assert_int_equal(mkdir(live, 0700), 0);
	snprintf(path, sizeof(path), "%s/key.pem", dead);
	touch(path);
	assert_int_equal(af_write_set(sub, files, 2, NULL), 0);
	assert_int_not_equal(lstat(dead, &st), 0);
	assert_int_equal(lstat(live, &st), 0);
	assert_int_equal(rmdir(live), 0);
	assert_int_equal(count_entries("certs_pushed.sftca-stage"), 0);
}


/* mode and uid:gid of dir/sub/name as "0640 1:1", or "" when absent. */
static const char *attrs_of(const char *sub, const char *name)
{
	static char out[64];
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	if (lstat(path, &st) != 0)
		return "";
	snprintf(out, sizeof(out), "%04o %lu:%lu", (unsigned)(st.st_mode & 07777),
		 (unsigned long)st.st_uid, (unsigned long)st.st_gid);
	return out;
}

static void make_file(const char *sub, const char *name, unsigned mode, uid_t uid, gid_t gid)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	touch(path);
	assert_int_equal(chown(path, uid, gid), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static const struct af_keep pair_keep[2] = { { { "cert.pem" } }, { { "key.pem" } } };

/* keep: a replaced file keeps its mode and owner (a key 0644 root's, a
 * certificate 0640 daemon's), alone and in a pair, backups included. */
static void keep_replaced(void **state)
{
	struct af_file files[2] = { { "key.pem", "K2", 2, 0600 }, { "cert.pem", "C2", 2, 0644 } };
	char sub[128];

	(void)state;
	snprintf(sub, sizeof(sub), "%s/d", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	make_file("d", "key.pem", 0644, 0, 0);
	make_file("d", "cert.pem", 0640, 1, 1);
	assert_int_equal(af_write_set_keep(sub, files, pair_keep, 2, "20261128T000010Z"), 0);
	assert_string_equal(attrs_of("d", "key.pem"), "0644 0:0");
	assert_string_equal(attrs_of("d", "cert.pem"), "0640 1:1");
	assert_string_equal(attrs_of("d", "cert.pem.backup.20261128T000010Z"), "0640 1:1");
	files[1].data = "C3";
	assert_int_equal(af_write_keep(sub, &files[1], &pair_keep[1], NULL), 0);
	assert_string_equal(attrs_of("d", "cert.pem"), "0640 1:1");
	/* Without keep the modes are the caller's, as before. */
	assert_int_equal(af_write_set(sub, files, 2, NULL), 0);
	assert_string_equal(attrs_of("d", "key.pem"), "0600 0:0");
	assert_string_equal(attrs_of("d", "cert.pem"), "0644 0:0");
}

/* keep: a new file takes its sibling's mode and owner (what the sibling
 * was before, also when the pair is written one by one because the
 * directory holds a subdirectory); the caller's mode only where there is
 * nothing to follow. */
static void keep_new_follows(void **state)
{
	struct af_file files[2] = { { "key.pem", "K", 1, 0600 }, { "cert.pem", "C", 1, 0644 } };
	char sub[128];

	(void)state;
	for (int fallback = 0; fallback < 2; fallback++) {
		const char *d = fallback ? "f" : "d";
		snprintf(sub, sizeof(sub), "%s/%s", dir, d);
		assert_int_equal(mkdir(sub, 0755), 0);
		if (fallback) {
			snprintf(sub, sizeof(sub), "%s/f/x", dir);
			assert_int_equal(mkdir(sub, 0755), 0);
			snprintf(sub, sizeof(sub), "%s/f", dir);
		}
		/* Nothing to follow: 0600 key, 0644 certificate (not the key's
		 * mode, though the key is written first). */
		assert_int_equal(af_write_set_keep(sub, files, pair_keep, 2, NULL), 0);
		assert_string_equal(attrs_of(d, "key.pem"), "0600 0:0");
		assert_string_equal(attrs_of(d, "cert.pem"), "0644 0:0");
		/* The key gone, the certificate 0640 daemon's: the new key follows it. */
		snprintf(sub, sizeof(sub), "%s/%s/key.pem", dir, d);
		assert_int_equal(unlink(sub), 0);
		make_file(d, "cert.pem", 0640, 1, 1);
		snprintf(sub, sizeof(sub), "%s/%s", dir, d);
		assert_int_equal(af_write_set_keep(sub, files, pair_keep, 2, NULL), 0);
		assert_string_equal(attrs_of(d, "key.pem"), "0640 1:1");
		assert_string_equal(attrs_of(d, "cert.pem"), "0640 1:1");
	}
	/* A single new file follows too. */
	snprintf(sub, sizeof(sub), "%s/d/cert.pem", dir);
	assert_int_equal(unlink(sub), 0);
	make_file("d", "key.pem", 0644, 2, 2);
	snprintf(sub, sizeof(sub), "%s/d", dir);
	assert_int_equal(af_write_keep(sub, &files[1], &pair_keep[1], NULL), 0);
	assert_string_equal(attrs_of("d", "cert.pem"), "0644 2:2");
}

static int write_as_nobody(void *arg)
{
	struct af_file f = { "cert.pem", "C", 1, 0644 };
	pid_t pid;
	int status;

	fflush(NULL);
	if ((pid = fork()) == 0) {
		log_init("child", LOG_STYLE_CLI, LOG_LVL_INFO);
		_exit(setgid(65534) != 0 || setuid(65534) != 0 ||
		      af_write_keep(arg, &f, &pair_keep[1], NULL) != 0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* Not root, the previous file someone else's: written, its mode kept, and
 * a warning says whose it was and whose it is now. */
static void keep_owner_not_root(void **state)
{
	char sub[128], err[4096];

	(void)state;
	assert_int_equal(geteuid(), 0); /* the integration environment runs as root */
	snprintf(sub, sizeof(sub), "%s/d", dir);
	assert_int_equal(mkdir(sub, 0777), 0);
	assert_int_equal(chmod(sub, 0777), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	make_file("d", "cert.pem", 0664, 1, 1);
	assert_int_equal(capture_stderr(write_as_nobody, sub, err, sizeof(err)), 0);
	assert_string_equal(attrs_of("d", "cert.pem"), "0664 65534:65534");
	assert_non_null(strstr(err, "/d/cert.pem: owner 1:1 not kept (only root can give a file "
				    "away): it is now owned by uid 65534"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(write_backup_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(faults_single_file, setup, teardown),
		cmocka_unit_test_setup_teardown(faults_pair, setup, teardown),
		cmocka_unit_test_setup_teardown(pair_keeps_other_files_and_backs_up, setup, teardown),
		cmocka_unit_test_setup_teardown(pair_creates_missing_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(predictable_stage_name_unused, setup, teardown),
		cmocka_unit_test_setup_teardown(dir_symlink_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(stale_stage_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(keep_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(keep_new_follows, setup, teardown),
		cmocka_unit_test_setup_teardown(keep_owner_not_root, setup, teardown),
	};
	log_init("test", LOG_STYLE_CLI, LOG_LVL_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
