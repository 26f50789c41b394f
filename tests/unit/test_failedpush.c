/* FAILED_PUSH files: the vendor's file from the seed article, merging,
 * lookups, refusals, and the writer's format, order and mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture.h"
#include "errors.h"
#include "failedpush.h"
#include "fileio.h"
#include "log.h"

#define FMC "cdb123c8-4347-11ef-aca1-f3aa241412a1"
#define BSNS "c8d5d5c6-87c9-11ef-a993-b9831565bc4e"
#define EMEA "6bf1143a-8a2e-11ef-92d8-fd927e807d77"

/* /var/tmp/certs/1728915794/FAILED_PUSH from the seed article, with the
 * article's wrapped lines joined (and its cut-off last line completed). */
static const char seed[] =
	BSNS " BSNS-1120-1 10.48.67.54 /etc/sf/ca_root/cacert.pem /var/sf/peers/" FMC "/cacert.pem\n"
	BSNS " BSNS-1120-1 10.48.67.54 /var/sf/peers/" BSNS "/certs_pushed//sftunnel-key.pem "
	"/var/sf/peers/" FMC "/sftunnel-key.pem\n"
	BSNS " BSNS-1120-1 10.48.67.54 /var/sf/peers/" BSNS "/certs_pushed//sftunnel-cert.pem "
	"/var/sf/peers/" FMC "/sftunnel-cert.pem\n"
	EMEA " EMEA-FPR3110-08 10.48.189.37 /etc/sf/ca_root/cacert.pem /var/sf/peers/" FMC
	"/cacert.pem\n"
	EMEA " EMEA-FPR3110-08 10.48.189.37 /var/sf/peers/" EMEA "/certs_pushed//sftunnel-key.pem "
	"/var/sf/peers/" FMC "/sftunnel-key.pem\n"
	EMEA " EMEA-FPR3110-08 10.48.189.37 /var/sf/peers/" EMEA "/certs_pushed//sftunnel-cert.pem "
	"/var/sf/peers/" FMC "/sftunnel-cert.pem\n";

struct parse_args {
	const char *text;
	struct failed_list *l;
};

static int do_parse(void *arg)
{
	struct parse_args *a = arg;

	return failedpush_parse("FAILED_PUSH", a->text, strlen(a->text), a->l);
}

static int parse(const char *text, struct failed_list *l, char *err, size_t errlen)
{
	struct parse_args a = { text, l };

	return capture_stderr(do_parse, &a, err, errlen);
}

static void vendor_file_from_the_seed(void **state)
{
	struct failed_list l;
	char err[1024];

	(void)state;
	assert_int_equal(parse(seed, &l, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(l.n, 2); /* six lines, two devices */
	assert_string_equal(l.v[0].uuid, BSNS);
	assert_string_equal(l.v[0].name, "BSNS-1120-1");
	assert_string_equal(l.v[0].ip, "10.48.67.54");
	assert_string_equal(l.v[1].uuid, EMEA);
	assert_string_equal(l.v[1].name, "EMEA-FPR3110-08");
	assert_string_equal(l.v[1].ip, "10.48.189.37");
	failedpush_free(&l);
	assert_null(l.v);
	failedpush_free(NULL);
}

static void comments_blanks_tabs_crlf(void **state)
{
	struct failed_list l;
	char err[1024];

	(void)state;
	assert_int_equal(parse("# written by hand\n"
			       "\n"
			       "   \t\n"
			       "  # indented comment\n" BSNS "\tBSNS-1120-1\t10.48.67.54  /a  /b\r\n"
			       "\r\n" EMEA " EMEA 10.48.189.37 /a /b", /* no final newline */
			       &l, err, sizeof(err)),
			 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].ip, "10.48.67.54");
	assert_string_equal(l.v[1].name, "EMEA");
	failedpush_free(&l);

	assert_int_equal(parse("", &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 0);
	failedpush_free(&l);
}

static void find_by_uuid_name_ip(void **state)
{
	struct failed_list l;
	char err[1024];

	(void)state;
	assert_int_equal(parse(seed, &l, err, sizeof(err)), 0);
	assert_ptr_equal(failedpush_find(&l, BSNS, NULL, NULL), &l.v[0]);
	assert_ptr_equal(failedpush_find(&l, EMEA, "BSNS-1120-1", "10.48.67.54"), &l.v[1]);
	/* A UUID decides alone: not in the file means not failed. */
	assert_null(failedpush_find(&l, FMC, "BSNS-1120-1", "10.48.67.54"));
	assert_ptr_equal(failedpush_find(&l, "", "EMEA-FPR3110-08", NULL), &l.v[1]);
	assert_ptr_equal(failedpush_find(&l, NULL, "EMEA-FPR3110-08", "10.48.67.54"), &l.v[1]);
	/* devices.csv names are the operator's: the address finds the device. */
	assert_ptr_equal(failedpush_find(&l, NULL, "my-branch-ftd", "10.48.67.54"), &l.v[0]);
	assert_ptr_equal(failedpush_find(&l, NULL, NULL, "10.48.189.37"), &l.v[1]);
	assert_null(failedpush_find(&l, NULL, "nobody", "10.0.0.1"));
	assert_null(failedpush_find(&l, NULL, NULL, NULL));
	assert_null(failedpush_find(NULL, BSNS, NULL, NULL));
	failedpush_free(&l);
}

static void ambiguous_names_and_addresses(void **state)
{
	struct failed_list l;
	char err[1024];

	(void)state;
	assert_int_equal(parse(BSNS " ftd 10.0.0.1 /a /b\n" EMEA " ftd 10.0.0.2 /a /b\n"
				    "11111111-2222-4333-8444-555555555555 x 10.0.0.2 /a /b\n",
			       &l, err, sizeof(err)),
			 0);
	assert_int_equal(l.n, 3);
	assert_null(failedpush_find(&l, NULL, "ftd", NULL));
	assert_null(failedpush_find(&l, NULL, "ftd", "10.0.0.1")); /* the name is ambiguous */
	assert_null(failedpush_find(&l, NULL, NULL, "10.0.0.2"));
	assert_ptr_equal(failedpush_find(&l, NULL, NULL, "10.0.0.1"), &l.v[0]);
	assert_ptr_equal(failedpush_find(&l, EMEA, "ftd", NULL), &l.v[1]);
	failedpush_free(&l);
}

struct bad {
	const char *text;
	const char *message;
};

static void refusals_name_the_line(void **state)
{
	static const struct bad cases[] = {
		{ "# c\n" BSNS " BSNS 10.0.0.1 /a\n",
		  "FAILED_PUSH line 2: 4 fields, expected 5: FTD_UUID FTD_NAME FTD_IP "
		  "SOURCE_PATH_ON_FMC DESTINATION_PATH_ON_FTD" },
		{ BSNS " BSNS 10.0.0.1 /a /b\n\n" BSNS " BSNS 10.0.0.1 /a /b /c\n",
		  "FAILED_PUSH line 3: 6 fields, expected 5" },
		{ "x\n", "FAILED_PUSH line 1: 1 field, expected 5" },
		{ "not-a-uuid BSNS 10.0.0.1 /a /b\n",
		  "FAILED_PUSH line 1: FTD_UUID \"not-a-uuid\" is not a canonical lowercase UUID" },
		{ "C8D5D5C6-87C9-11EF-A993-B9831565BC4E BSNS 10.0.0.1 /a /b\n",
		  "line 1: FTD_UUID \"C8D5D5C6-87C9-11EF-A993-B9831565BC4E\" is not a canonical" },
		{ BSNS " BSNS 10.0.0.1 /a /b\n" BSNS " OTHER 10.0.0.1 /a /b\n",
		  "line 2: device " BSNS " is \"OTHER\" at 10.0.0.1 here but \"BSNS\" at 10.0.0.1 "
		  "earlier" },
		{ BSNS " BSNS 10.0.0.1 /a /b\n" BSNS " BSNS 10.0.0.9 /a /b\n",
		  "line 2: device " BSNS " is \"BSNS\" at 10.0.0.9 here" },
		{ BSNS " x 10.0.0.1.10.0.0.1.10.0.0.1.10.0.0.1.10.0.0.1.10.0.0.1.10.0.0.1.1 /a /b\n",
		  "line 1: FTD_IP is 64 bytes; at most 63 allowed" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct failed_list l = { (struct failed_device *)1, 1 };
		char err[2048];
		int r = parse(cases[i].text, &l, err, sizeof(err));
		if (r != SFTCA_ERR_INVALID || strstr(err, cases[i].message) == NULL)
			fail_msg("case %zu: r=%d, wanted '%s' in: %s", i, r, cases[i].message, err);
		assert_null(l.v);
		assert_int_equal(l.n, 0);
	}
}

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sftca-test-failedpush.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char path[512];

	(void)state;
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	return rmdir(tmpdir);
}

static char *read_back(const char *path)
{
	char *text;
	size_t len;

	assert_int_equal(file_read_all(path, 1 << 20, &text, &len), 0);
	return text;
}

static void writer_matches_the_vendor(void **state)
{
	struct failedpush_writer *w;
	struct failed_list l;
	struct stat st;
	char path[128], *text;
	int written = -1;

	(void)state;
	snprintf(path, sizeof(path), "%s/FAILED_PUSH", tmpdir);
	assert_non_null(w = failedpush_open(path));
	/* Added out of order; pair directories with and without a trailing
	 * slash (the vendor's doubled slash is not copied). */
	assert_int_equal(failedpush_add(w, EMEA, "EMEA-FPR3110-08", "10.48.189.37",
					"/etc/sf/ca_root/cacert.pem",
					"/var/sf/peers/" EMEA "/certs_pushed/", "/var/sf/peers/" FMC),
			 0);
	assert_int_equal(failedpush_add(w, BSNS, "BSNS-1120-1", "10.48.67.54",
					"/etc/sf/ca_root/cacert.pem",
					"/var/sf/peers/" BSNS "/certs_pushed", "/var/sf/peers/" FMC "/"),
			 0);
	assert_int_equal(failedpush_close(w, 1, &written), 0);
	assert_int_equal(written, FAILEDPUSH_WRITTEN);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	text = read_back(path);
	{
		/* The seed with single slashes. */
		char want[sizeof(seed)];
		const char *s = seed;
		char *o = want;
		for (; *s; s++)
			if (!(s[0] == '/' && s[1] == '/'))
				*o++ = *s;
		*o = '\0';
		assert_string_equal(text, want);
	}
	free(text);
	/* What sftca writes, sftca (and the vendor's format) reads back. */
	assert_int_equal(failedpush_load(path, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "BSNS-1120-1");
	failedpush_free(&l);

	/* A second run keeps the first file as a backup. */
	assert_non_null(w = failedpush_open(path));
	assert_int_equal(failedpush_add(w, BSNS, "BSNS-1120-1", "10.48.67.54", "/b", "/p", "/d"), 0);
	assert_int_equal(failedpush_close(w, 1, &written), 0);
	text = read_back(path);
	assert_string_equal(text, BSNS " BSNS-1120-1 10.48.67.54 /b /d/cacert.pem\n" BSNS
				   " BSNS-1120-1 10.48.67.54 /p/sftunnel-key.pem /d/sftunnel-key.pem\n" BSNS
				   " BSNS-1120-1 10.48.67.54 /p/sftunnel-cert.pem /d/sftunnel-cert.pem\n");
	free(text);
	{
		DIR *d = opendir(tmpdir);
		struct dirent *e;
		int backups = 0;
		while ((e = readdir(d)) != NULL)
			backups += strncmp(e->d_name, "FAILED_PUSH.backup.", 19) == 0;
		closedir(d);
		assert_int_equal(backups, 1);
	}

	/* A run that did not reach every device leaves the list alone... */
	assert_non_null(w = failedpush_open(path));
	assert_int_equal(failedpush_close(w, 0, &written), 0);
	assert_int_equal(written, FAILEDPUSH_NONE);
	assert_int_equal(access(path, F_OK), 0);
	/* ...one in which nothing failed moves it aside: a --retry of it would
	 * restart healthy devices. */
	assert_non_null(w = failedpush_open(path));
	assert_int_equal(failedpush_close(w, 1, &written), 0);
	assert_int_equal(written, FAILEDPUSH_CLEARED);
	assert_int_not_equal(access(path, F_OK), 0);
	{
		DIR *d = opendir(tmpdir);
		struct dirent *e;
		int backups = 0, found = 0;
		while ((e = readdir(d)) != NULL)
			if (strncmp(e->d_name, "FAILED_PUSH.backup.", 19) == 0) {
				char *t, p2[600];
				backups++;
				assert_true((size_t)snprintf(p2, sizeof(p2), "%s/%s", tmpdir, e->d_name) < sizeof(p2));
				t = read_back(p2);
				found += strstr(t, "/p/sftunnel-cert.pem") != NULL;
				free(t);
			}
		closedir(d);
		assert_int_equal(backups, 2);
		assert_int_equal(found, 1); /* the second list, kept */
	}
}

static void writer_names_and_refusals(void **state)
{
	struct failedpush_writer *w;
	struct failed_list l;
	char path[128], *text;
	int written = -1;

	(void)state;
	snprintf(path, sizeof(path), "%s/names", tmpdir);
	assert_non_null(w = failedpush_open(path));
	assert_int_equal(failedpush_add(w, BSNS, "branch office\tftd", "10.0.0.1", "/b", "/p", "/d"),
			 0);
	assert_int_equal(failedpush_add(w, EMEA, "", "10.0.0.2", "/b", "/p", "/d"), 0);
	/* The same device again: one entry, the latest data. */
	assert_int_equal(failedpush_add(w, EMEA, "emea", "10.0.0.3", "/b", "/p", "/d"), 0);
	assert_int_equal(failedpush_add(w, "not-a-uuid", "x", "10.0.0.1", "/b", "/p", "/d"),
			 SFTCA_ERR_INVALID);
	assert_int_equal(failedpush_add(w, FMC, "x", "10.0.0.1", "/with space/b", "/p", "/d"),
			 SFTCA_ERR_INVALID);
	assert_int_equal(failedpush_add(w, FMC, "x", "", "/b", "/p", "/d"), SFTCA_ERR_INVALID);
	assert_int_equal(failedpush_add(w, FMC, "x", "10.0.0.1", "/b", "/p", NULL), SFTCA_ERR_INVALID);
	assert_int_equal(failedpush_close(w, 1, &written), 0);
	assert_int_equal(written, FAILEDPUSH_WRITTEN);
	assert_int_equal(failedpush_load(path, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "branch_office_ftd");
	assert_string_equal(l.v[1].name, "emea");
	assert_string_equal(l.v[1].ip, "10.0.0.3");
	failedpush_free(&l);
	text = read_back(path);
	assert_null(strstr(text, FMC)); /* refused adds left nothing */
	free(text);

	/* Nothing failed: no file. */
	snprintf(path, sizeof(path), "%s/empty", tmpdir);
	assert_non_null(w = failedpush_open(path));
	assert_int_equal(failedpush_close(w, 1, &written), 0);
	assert_int_equal(written, FAILEDPUSH_NONE);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(failedpush_close(NULL, 1, &written), 0);

	assert_null(failedpush_open("/tmp/dir/"));
}

struct adder {
	struct failedpush_writer *w;
	int base;
};

static void *add_many(void *arg)
{
	struct adder *a = arg;

	for (int i = 0; i < 50; i++) {
		char uuid[40], name[32];
		int k = a->base + i;
		snprintf(uuid, sizeof(uuid), "%08x-0000-4000-8000-000000000000", k);
		snprintf(name, sizeof(name), "ftd-%04d", 399 - k);
		if (failedpush_add(a->w, uuid, name, "10.0.0.1", "/b", "/p", "/d") != 0)
			return arg;
	}
	return NULL;
}

static void writer_from_many_threads(void **state)
{
	struct failedpush_writer *w;
	struct adder a[8];
	pthread_t t[8];
	char path[128], *text, *s;
	int written = 0, lines = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/threads", tmpdir);
	assert_non_null(w = failedpush_open(path));
	for (int i = 0; i < 8; i++) {
		a[i] = (struct adder){ w, i * 50 };
		assert_int_equal(pthread_create(&t[i], NULL, add_many, &a[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		assert_null(ret);
	}
	assert_int_equal(failedpush_close(w, 1, &written), 0);
	text = read_back(path);
	for (s = text; (s = strchr(s, '\n')) != NULL; s++)
		lines++;
	assert_int_equal(lines, 400 * 3);
	/* Sorted by name: ftd-0000 (added last by thread 7) comes first. */
	assert_int_equal(strncmp(text, "0000018f-0000-4000-8000-000000000000 ftd-0000 ", 46), 0);
	assert_non_null(strstr(text, "ftd-0399 10.0.0.1 /p/sftunnel-cert.pem /d/sftunnel-cert.pem\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vendor_file_from_the_seed),
		cmocka_unit_test(comments_blanks_tabs_crlf),
		cmocka_unit_test(find_by_uuid_name_ip),
		cmocka_unit_test(ambiguous_names_and_addresses),
		cmocka_unit_test(refusals_name_the_line),
		cmocka_unit_test(writer_matches_the_vendor),
		cmocka_unit_test(writer_names_and_refusals),
		cmocka_unit_test(writer_from_many_threads),
	};
	log_init("test", LOG_STYLE_CLI, LOG_LVL_INFO);
	return cmocka_run_group_tests(tests, setup, teardown);
}
