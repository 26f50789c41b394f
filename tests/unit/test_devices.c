/* devices.csv: the vendor's positional rows, header rows in any order,
 * BOM, CRLF, quoted passwords, every refusal with its line, and passwords
 * never in a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture.h"
#include "devices.h"
#include "errors.h"
#include "fileio.h"
#include "log.h"

#define PW "Sekr3t-PW" /* in every row of the error cases: never in a message */
#define U1 "c8d5d5c6-87c9-11ef-a993-b9831565bc4e"
#define U2 "6bf1143a-8a2e-11ef-92d8-fd927e807d77"
#define HEADER "device_name,ip,admin_username,admin_password"

struct parse_args {
	const char *text, *path;
	size_t len;
	struct device_list *l;
};

static int do_parse(void *arg)
{
	struct parse_args *a = arg;

	return a->path ? devices_load(a->path, a->l) : devices_parse("devices.csv", a->text, a->len, a->l);
}

/* Parse len bytes of text; stderr output into err. */
static int parse_n(const char *text, size_t len, struct device_list *l, char *err, size_t errlen)
{
	struct parse_args a = { .text = text, .len = len, .l = l };

	return capture_stderr(do_parse, &a, err, errlen);
}

static int parse(const char *text, struct device_list *l, char *err, size_t errlen)
{
	return parse_n(text, strlen(text), l, err, errlen);
}

static void vendor_rows_and_defaults(void **state)
{
	struct device_list l;
	char err[1024];

	(void)state;
	assert_int_equal(parse("FMCpri,10.0.0.1,admin,Admin123\n"
			       "FTDv,10.0.0.2,admin,pw2\n",
			       &l, err, sizeof(err)),
			 0);
	assert_string_equal(err, "");
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "FMCpri");
	assert_string_equal(l.v[0].ip, "10.0.0.1");
	assert_string_equal(l.v[0].user, "admin");
	assert_string_equal(l.v[0].password, "Admin123");
	assert_int_equal(l.v[0].password_len, 8);
	assert_string_equal(l.v[0].uuid, "");
	assert_int_equal(l.v[0].port, 22);
	assert_int_equal(l.v[0].tunnel_port, 8305);
	assert_int_equal(l.v[0].shell, SHELL_DEFAULT);
	assert_int_equal(l.v[0].line, 1);
	assert_int_equal(l.v[1].line, 2);
	assert_string_equal(l.v[1].password, "pw2");
	devices_free(&l);
	assert_null(l.v);
	assert_int_equal(l.n, 0);
	devices_free(&l); /* twice is harmless */
	devices_free(NULL);
}

static void vendor_rows_with_extra_columns(void **state)
{
	struct device_list l;
	char err[1024];

	(void)state;
	assert_int_equal(parse("a,10.0.0.1,admin,p," U1 "\n"
			       "b,10.0.0.2,admin,p," U2 ",2222\n"
			       "c,10.0.0.3,admin,p,,,ftd\n"
			       "d,10.0.0.4,admin,p,,2200,DIRECT,18305\n",
			       &l, err, sizeof(err)),
			 0);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.v[0].uuid, U1);
	assert_int_equal(l.v[0].port, 22);
	assert_int_equal(l.v[1].port, 2222);
	assert_int_equal(l.v[1].tunnel_port, 8305);
	assert_string_equal(l.v[2].uuid, "");
	assert_int_equal(l.v[2].port, 22);
	assert_int_equal(l.v[2].shell, SHELL_FTD);
	assert_int_equal(l.v[3].port, 2200);
	assert_int_equal(l.v[3].shell, SHELL_DIRECT);
	assert_int_equal(l.v[3].tunnel_port, 18305);
	devices_free(&l);
}

static void header_in_any_order(void **state)
{
	struct device_list l;
	char err[1024];

	(void)state;
	assert_int_equal(parse("Tunnel_Port,uuid,IP,admin_password,shell,device_name,port,admin_username\n"
			       "8306," U1 ",127.0.0.2,pw,direct,ftd-1,2022,root\n"
			       "," U2 ",127.0.0.3,,,ftd-2,,admin\n",
			       &l, err, sizeof(err)),
			 0);
	assert_string_equal(err, "");
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "ftd-1");
	assert_string_equal(l.v[0].ip, "127.0.0.2");
	assert_string_equal(l.v[0].user, "root");
	assert_string_equal(l.v[0].password, "pw");
	assert_string_equal(l.v[0].uuid, U1);
	assert_int_equal(l.v[0].port, 2022);
	assert_int_equal(l.v[0].tunnel_port, 8306);
	assert_int_equal(l.v[0].shell, SHELL_DIRECT);
	assert_int_equal(l.v[0].line, 2);
	/* Empty optional cells keep the defaults; an empty password is the
	 * caller's business. */
	assert_string_equal(l.v[1].password, "");
	assert_int_equal(l.v[1].password_len, 0);
	assert_int_equal(l.v[1].port, 22);
	assert_int_equal(l.v[1].tunnel_port, 8305);
	assert_int_equal(l.v[1].shell, SHELL_DEFAULT);
	devices_free(&l);

	/* A header with only the vendor's four columns. */
	assert_int_equal(parse("DEVICE_NAME,ip,admin_username,admin_password\na,b,c,d\n", &l, err,
			       sizeof(err)),
			 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].ip, "b");
	devices_free(&l);
}

static void bom_crlf_and_no_final_newline(void **state)
{
	struct device_list l;
	char err[1024];

	(void)state;
	assert_int_equal(parse("\xef\xbb\xbf" HEADER ",uuid\r\n"
			       "a,10.0.0.1,admin,p1," U1 "\r\n"
			       "\r\n"
			       "b,10.0.0.2,admin,p2," U2,
			       &l, err, sizeof(err)),
			 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "a");
	assert_string_equal(l.v[0].password, "p1");
	assert_string_equal(l.v[1].password, "p2");
	assert_string_equal(l.v[1].uuid, U2);
	assert_int_equal(l.v[1].line, 4);
	devices_free(&l);

	/* A BOM before a vendor row (no header) is not part of the name. */
	assert_int_equal(parse("\xef\xbb\xbf"
			       "FTDv,10.0.0.2,admin,pw",
			       &l, err, sizeof(err)),
			 0);
	assert_string_equal(l.v[0].name, "FTDv");
	assert_string_equal(l.v[0].password, "pw");
	devices_free(&l);
}

static void quoted_passwords(void **state)
{
	struct device_list l;
	char err[1024];

	(void)state;
	assert_int_equal(parse(HEADER "\n"
			       "a,10.0.0.1,admin,\"p,w\"\"x\"\"\"\n"
			       "\"b c\",10.0.0.2,admin,\" lead and trail \"\n"
			       "c,10.0.0.3,admin,\"two\nlines\"\n"
			       "d,10.0.0.4,admin,\"\"\n"
			       "e,10.0.0.5,admin,  unquoted is trimmed  \n",
			       &l, err, sizeof(err)),
			 0);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.v[0].password, "p,w\"x\"");
	assert_int_equal(l.v[0].password_len, 6);
	assert_string_equal(l.v[1].name, "b c");
	assert_string_equal(l.v[1].password, " lead and trail ");
	assert_string_equal(l.v[2].password, "two\nlines");
	assert_int_equal(l.v[2].line, 4);
	assert_int_equal(l.v[3].line, 6); /* after the quoted line break */
	assert_string_equal(l.v[3].password, "");
	assert_string_equal(l.v[4].password, "unquoted is trimmed");
	devices_free(&l);
}

static void length_limits_are_exact(void **state)
{
	struct device_list l;
	char text[4096], err[1024];

	(void)state;
	snprintf(text, sizeof(text), "%0127d,%063d,%063d,%01023d\n", 0, 0, 0, 0);
	assert_int_equal(parse(text, &l, err, sizeof(err)), 0);
	assert_int_equal(strlen(l.v[0].name), 127);
	assert_int_equal(strlen(l.v[0].ip), 63);
	assert_int_equal(strlen(l.v[0].user), 63);
	assert_int_equal(l.v[0].password_len, 1023);
	devices_free(&l);
}

struct bad {
	const char *text;
	const char *message;
};

static void every_refusal_names_the_line(void **state)
{
	static char longname[200], longip[200], longuser[200], longpw[1200];
	const struct bad cases[] = {
		{ "a,10.0.0.1,admin," PW "\nb,10.0.0.2,admin," PW ",,80a\n",
		  "devices.csv line 2: port \"80a\" is not a number" },
		{ HEADER ",port\n\na,10.0.0.1,admin," PW ",0\n",
		  "devices.csv line 3: port 0 is out of range (1-65535)" },
		{ "a,10.0.0.1,admin," PW ",,65536\n", "line 1: port 65536 is out of range" },
		{ "a,10.0.0.1,admin," PW ",,-1\n", "line 1: port \"-1\" is not a number" },
		{ "a,10.0.0.1,admin," PW ",,,,84x\n", "line 1: tunnel_port \"84x\" is not a number" },
		{ "a,10.0.0.1,admin," PW ",,,bash\n", "line 1: shell \"bash\": must be direct or ftd" },
		{ "a,10.0.0.1,admin," PW ",X\n", "line 1: uuid \"X\": not a canonical lowercase UUID" },
		{ "a,10.0.0.1,admin," PW ",C8D5D5C6-87C9-11EF-A993-B9831565BC4E\n",
		  "uuid \"C8D5D5C6-87C9-11EF-A993-B9831565BC4E\": not a canonical lowercase UUID" },
		{ HEADER "\n,10.0.0.1,admin," PW "\n", "devices.csv line 2: empty device_name" },
		{ "a,,admin," PW "\n", "line 1: empty ip" },
		{ "a,10.0.0.1,," PW "\n", "line 1: empty admin_username" },
		{ "a,10.0.0.1,admin\n", "line 1: 3 fields; a row is device_name,ip" },
		{ "a,10.0.0.1,admin," PW ",,,,,x\n", "line 1: 9 fields; a row is" },
		{ HEADER "\na,10.0.0.1,admin," PW ",\n", "line 2: 5 fields; the header names 4" },
		{ HEADER "\na,10.0.0.1,admin," PW "\nb,10.0.0.2,admin," PW "\na,10.0.0.3,admin," PW "\n",
		  "devices.csv line 4: device \"a\" is also on line 2" },
		{ "a,10.0.0.1,admin," PW "," U1 "\nb,10.0.0.2,admin," PW "," U1 "\n",
		  "line 2: uuid " U1 " is also on line 1 (device \"a\")" },
		{ longname, "line 1: device_name is 128 bytes; at most 127 allowed" },
		{ longip, "line 1: ip is 64 bytes; at most 63 allowed" },
		{ longuser, "line 1: admin_username is 64 bytes; at most 63 allowed" },
		{ longpw, "line 1: admin_password is 1024 bytes; at most 1023 allowed" },
		{ "device_name,ip,admin_username,admin_password,colour\n",
		  "line 1: unknown column \"colour\" in the header" },
		{ "device_name,ip,admin_username,admin_password,IP\n",
		  "line 1: column ip appears twice in the header (columns 2 and 5)" },
		{ "device_name,ip,admin_username,uuid\na,b,c," U1 "\n",
		  "line 1: the header has no admin_password column" },
		{ "device_nmae,ip,admin_username,admin_password\na,b,c," PW "\n",
		  "line 1: this looks like a header row (3 fields are column names) but field 1 is "
		  "not a column name" },
		{ "ip,device_nmae,admin_username,admin_password\na,b,c," PW "\n",
		  "line 1: this looks like a header row (3 fields are column names) but field 2" },
		{ "a,10.0.0.1,admin,\"" PW "\"x\n", "line 1: a '\"' inside an unquoted field" },
		{ "a,10.0.0.1,admin," PW "\"x\n", "line 1: a '\"' inside an unquoted field" },
		{ "a,10.0.0.1,admin," PW "\nb,10.0.0.1,admin,\"" PW "\n\n",
		  "devices.csv line 2: a '\"' inside an unquoted field, after a closing quote, or a "
		  "quote never closed" },
		{ "\"a\tb\",10.0.0.1,admin," PW "\n", "line 1: device_name \"a?b\" contains a control" },
		{ "a,10.0.0.1 x,admin," PW "\n", "line 1: ip \"10.0.0.1 x\" contains a space" },
		{ "", "devices.csv: no devices in it" },
		{ "\n\r\n  \n", "devices.csv: no devices in it" },
		{ HEADER ",uuid\r\n", "devices.csv: no devices in it" },
	};
	(void)state;
	snprintf(longname, sizeof(longname), "%0128d,10.0.0.1,admin," PW "\n", 0);
	snprintf(longip, sizeof(longip), "a,%064d,admin," PW "\n", 0);
	snprintf(longuser, sizeof(longuser), "a,10.0.0.1,%064d," PW "\n", 0);
	snprintf(longpw, sizeof(longpw), "a,10.0.0.1,admin," PW "%01015d\n", 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct device_list l = { (struct device *)1, 1 }; /* must be reset */
		char err[4096];
		int r = parse(cases[i].text, &l, err, sizeof(err));
		if (r != SFTCA_ERR_INVALID || strstr(err, cases[i].message) == NULL)
			fail_msg("case %zu: r=%d, wanted '%s' in: %s", i, r, cases[i].message, err);
		if (strstr(err, PW) != NULL || strstr(err, "Sekr3t") != NULL)
			fail_msg("case %zu: the password is in the message: %s", i, err);
		if (strchr(err, '\n') != strrchr(err, '\n'))
			fail_msg("case %zu: more than one message: %s", i, err);
		assert_null(l.v);
		assert_int_equal(l.n, 0);
	}
}

static void nul_bytes_are_refused(void **state)
{
	static const char pw[] = "a,10.0.0.1,admin,Sekr3t\0PW\n";
	static const char name[] = "a\0b,10.0.0.1,admin,pw\n";
	struct device_list l;
	char err[1024];

	(void)state;
	assert_int_equal(parse_n(pw, sizeof(pw) - 1, &l, err, sizeof(err)), SFTCA_ERR_INVALID);
	assert_non_null(strstr(err, "line 1: admin_password contains a NUL byte"));
	assert_null(strstr(err, "Sekr3t"));
	assert_int_equal(parse_n(name, sizeof(name) - 1, &l, err, sizeof(err)), SFTCA_ERR_INVALID);
	assert_non_null(strstr(err, "line 1: device_name contains a NUL byte"));
}

/* A refusal late in the file frees (and wipes) what was read before it. */
static void late_error_frees_earlier_rows(void **state)
{
	struct device_list l;
	char text[64 * 1024], err[1024];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 500; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "dev%d,10.0.%d.%d,admin,pw%d\n", i,
				      i / 250, i % 250, i);
	snprintf(text + n, sizeof(text) - n, "last,10.9.9.9,admin,pw,,22x\n");
	assert_int_equal(parse(text, &l, err, sizeof(err)), SFTCA_ERR_INVALID);
	assert_non_null(strstr(err, "devices.csv line 501: port \"22x\""));
	assert_null(l.v);
}

static char tmpdir[64];

static int load_file(const char *text, mode_t mode, struct device_list *l, char *err,
		     size_t errlen)
{
	char path[128];
	struct parse_args a = { .path = path, .l = l };
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/devices.csv", tmpdir);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
	r = capture_stderr(do_parse, &a, err, errlen);
	unlink(path);
	return r;
}

static void load_warns_about_readable_files(void **state)
{
	struct device_list l;
	char err[1024];

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sftca-test-devices.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	assert_int_equal(load_file("a,10.0.0.1,admin,pw\n", 0600, &l, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(l.v[0].password, "pw");
	devices_free(&l);

	assert_int_equal(load_file("a,10.0.0.1,admin,pw\n", 0644, &l, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "holds passwords but is readable by group or others "
				    "(mode 0644): chmod 600"));
	devices_free(&l);

	/* Messages name the file as given. */
	assert_int_equal(load_file("a,10.0.0.1,admin,pw,,x\n", 0600, &l, err, sizeof(err)),
			 SFTCA_ERR_INVALID);
	assert_non_null(strstr(err, "/devices.csv line 1: port \"x\" is not a number"));

	assert_int_not_equal(devices_load("/nonexistent/devices.csv", &l), 0);
	assert_null(l.v);
	rmdir(tmpdir);
}

static void shell_names(void **state)
{
	(void)state;
	assert_string_equal(device_shell_name(SHELL_DEFAULT), "default");
	assert_string_equal(device_shell_name(SHELL_DIRECT), "direct");
	assert_string_equal(device_shell_name(SHELL_FTD), "ftd");
}

/* devices resolve's output: the uuid column filled, everything else as it
 * was (passwords that need quoting quoted again, to the same bytes). */
static void rewrite_fills_uuids_byte_for_byte(void **state)
{
	static const char vendor[] = "FMCpri,10.0.0.1,admin,pw\n"
				     "b,10.0.0.2,admin,\"p,a\"\"s s\"\r\n"
				     "c,10.0.0.3,admin,\" pad \",,2222\n";
	static const char header[] = "IP,device_name,admin_password,admin_username,shell\n"
				     "10.0.0.2,b,x,admin,FTD\n";
	static const char with_uuid[] = HEADER ",uuid,port\nb,10.0.0.2,admin,x,," "\n"
					"c,10.0.0.3,admin,y," U2 ",22\n";
	const char *uuids[3] = { U1, NULL, U2 };
	struct device_list back = { 0 };
	char *out = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(devices_rewrite("v.csv", vendor, sizeof(vendor) - 1, uuids, 3, &out, &n), 0);
	assert_string_equal(out, HEADER ",uuid,port\n"
				 "FMCpri,10.0.0.1,admin,pw," U1 ",\n"
				 "b,10.0.0.2,admin,\"p,a\"\"s s\",,\n"
				 "c,10.0.0.3,admin,\" pad \"," U2 ",2222\n");
	assert_int_equal(devices_parse("out", out, n, &back), 0);
	assert_int_equal(back.n, 3);
	assert_string_equal(back.v[1].password, "p,a\"s s");
	assert_string_equal(back.v[2].password, " pad ");
	assert_string_equal(back.v[0].uuid, U1);
	assert_int_equal(back.v[2].port, 2222);
	devices_free(&back);
	secret_free(out, n);

	/* A header as it was (names, order, case of values), gaining uuid. */
	uuids[0] = U2;
	assert_int_equal(devices_rewrite("h.csv", header, sizeof(header) - 1, uuids, 1, &out, &n), 0);
	assert_string_equal(out, "IP,device_name,admin_password,admin_username,shell,uuid\n"
				 "10.0.0.2,b,x,admin,FTD," U2 "\n");
	secret_free(out, n);

	/* An existing column is filled where it is; NULL keeps the row's. */
	uuids[0] = U1;
	uuids[1] = NULL;
	assert_int_equal(devices_rewrite("u.csv", with_uuid, sizeof(with_uuid) - 1, uuids, 2, &out, &n), 0);
	assert_string_equal(out, HEADER ",uuid,port\nb,10.0.0.2,admin,x," U1 ",\n"
				 "c,10.0.0.3,admin,y," U2 ",22\n");
	secret_free(out, n);

	/* The device count must match what the caller resolved. */
	assert_int_not_equal(devices_rewrite("u.csv", with_uuid, sizeof(with_uuid) - 1, uuids, 3, &out, &n), 0);
	assert_null(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vendor_rows_and_defaults),
		cmocka_unit_test(vendor_rows_with_extra_columns),
		cmocka_unit_test(header_in_any_order),
		cmocka_unit_test(bom_crlf_and_no_final_newline),
		cmocka_unit_test(quoted_passwords),
		cmocka_unit_test(length_limits_are_exact),
		cmocka_unit_test(every_refusal_names_the_line),
		cmocka_unit_test(nul_bytes_are_refused),
		cmocka_unit_test(late_error_frees_earlier_rows),
		cmocka_unit_test(load_warns_about_readable_files),
		cmocka_unit_test(shell_names),
		cmocka_unit_test(rewrite_fills_uuids_byte_for_byte),
	};
	log_init("test", LOG_STYLE_CLI, LOG_LVL_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
