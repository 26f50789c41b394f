/* sftca check: offline expiry check of certificate files and trees, with
 * monitoring exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN). */
#include "cainfo.h"
#include "certscan.h"
#include "client.h"
#include "expiry.h"
#include "log.h"
#include "textclean.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* `check` speaks the monitoring convention: a usage error is UNKNOWN (3),
 * never 2, which would read as CRITICAL. */
#define EXIT_CHECK_USAGE EXPIRY_UNKNOWN

enum check_format { FMT_HUMAN, FMT_JSON, FMT_PROMETHEUS };

struct check_args {
	struct certscan_opts so;
	enum check_format format;
	const char *out;
};

static void help(FILE *f)
{
	fprintf(f,
		"usage: sftca check [--warn-days 90] [--crit-days 30] [--json|--prometheus]\n"
		"                   [--include-backups] [--out FILE] PATH...\n"
		"\n"
		"Checks, offline, every certificate in the files and directories named (PEM,\n"
		"bundles included, or DER). Directories are walked recursively, following\n"
		"symbolic links (each directory once, so loops end); there, files whose content\n"
		"holds a PEM certificate or CRL are checked, and *.pem/*.crt/*.cer/*.cert/*.der\n"
		"files must hold one. A CRL (crl.pem, which sftunnel.conf's proxy_crl names) is\n"
		"judged by its nextUpdate with the same thresholds: one that runs out can drop\n"
		"every tunnel. Files with only a key or CSR are skipped. Backups\n"
		"(NAME.backup, NAME.backup.<stamp>) are skipped in walks unless\n"
		"--include-backups; a file named on the command line is always checked.\n"
		"\n"
		"Days and states use the vendor's arithmetic: expired when notAfter <= now;\n"
		"CRITICAL when notAfter <= now + crit*86400 (or expired); WARNING when\n"
		"notAfter <= now + warn*86400; days are whole days, truncated.\n"
		"\n"
		"  --warn-days N       WARNING threshold in days (default 90)\n"
		"  --crit-days N       CRITICAL threshold in days (default 30; <= --warn-days)\n"
		"  --json              one JSON document\n"
		"  --prometheus        Prometheus textfile-collector format\n"
		"  --include-backups   also check backups met in directory walks\n"
		"  --out FILE          write the report to FILE atomically (for the textfile\n"
		"                      collector) instead of standard output\n"
		"\n"
		"When a certificate (not a CRL) has expired or has 30 days or fewer left, the\n"
		"rules for an expiring CA follow on stderr (--json: expiry_rules).\n"
		"\n"
		"Exit code: the worst state, by severity OK < UNKNOWN < WARNING < CRITICAL:\n"
		"0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (a path missing or unreadable, a file\n"
		"that should hold a certificate and does not parse, no certificate at all).\n"
		"Usage errors also exit 3 (UNKNOWN), not 2, which would mean CRITICAL here.\n");
}

static void iso_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

static void count_states(const struct certscan *cs, size_t counts[4])
{
	memset(counts, 0, 4 * sizeof(counts[0]));
	for (size_t i = 0; i < certscan_count(cs); i++)
		counts[certscan_result(cs, i)->state]++;
}

/* ---- human ---- */

static void print_result(FILE *f, const struct cert_result *r)
{
	char *path = text_clean(r->path, strlen(r->path), 0);
	char na[40], idx[16] = "";

	if (r->index >= 0)
		snprintf(idx, sizeof(idx), "[%d]", r->index);
	if (r->error != NULL) {
		fprintf(f, "%-8s  %s%s  %s\n", expiry_state_name(r->state), path ? path : "?", idx,
			r->error);
	} else {
		const char *end = r->crl ? "nextUpdate" : "notAfter", *what = r->crl ? "CRL of " : "";
		fmt_time(r->not_after, na, sizeof(na));
		if (r->expired)
			fprintf(f, "%-8s  %s%s  %s %s, expired %lld days ago  %s%s\n",
				expiry_state_name(r->state), path ? path : "?", idx, end, na,
				(long long)-r->days, what, r->subject);
		else
			fprintf(f, "%-8s  %s%s  %s %s, %lld days left  %s%s\n",
				expiry_state_name(r->state), path ? path : "?", idx, end, na,
				(long long)r->days, what, r->subject);
	}
	free(path);
}

static void print_human(FILE *f, const struct certscan *cs, const struct check_args *a)
{
	enum expiry_state worst = certscan_worst(cs);
	size_t c[4], certs, crls = 0;

	count_states(cs, c);
	for (size_t i = 0; i < certscan_count(cs); i++)
		crls += certscan_result(cs, i)->crl && certscan_result(cs, i)->error == NULL;
	certs = c[EXPIRY_OK] + c[EXPIRY_WARNING] + c[EXPIRY_CRITICAL] - crls;
	/* Summary first: monitoring systems show the first line as the status. */
	fprintf(f, "%s: %zu certificate%s", expiry_state_name(worst), certs, certs == 1 ? "" : "s");
	if (crls)
		fprintf(f, " and %zu CRL%s", crls, crls == 1 ? "" : "s");
	fprintf(f, " in %zu file%s: %zu OK, %zu WARNING, %zu CRITICAL", certscan_files(cs),
		certscan_files(cs) == 1 ? "" : "s", c[EXPIRY_OK], c[EXPIRY_WARNING],
		c[EXPIRY_CRITICAL]);
	if (c[EXPIRY_UNKNOWN])
		fprintf(f, "; %zu UNKNOWN (not checkable)", c[EXPIRY_UNKNOWN]);
	if (certscan_count(cs) == 0)
		fprintf(f, "; no certificate found");
	fprintf(f, " (warning within %d days, critical within %d", a->so.warn_days,
		a->so.crit_days);
	if (certscan_skipped_backups(cs))
		fprintf(f, "; %zu backup%s skipped", certscan_skipped_backups(cs),
			certscan_skipped_backups(cs) == 1 ? "" : "s");
	fprintf(f, ")\n");
	for (size_t i = 0; i < certscan_count(cs); i++)
		print_result(f, certscan_result(cs, i));
}

/* ---- JSON ---- */

static json_t *result_json(const struct cert_result *r)
{
	char nb[32], na[32];
	json_t *j = json_pack("{s:s, s:o, s:s, s:s}", "path", r->path, "index",
			      r->index >= 0 ? json_integer(r->index) : json_null(), "kind",
			      r->crl ? "crl" : "certificate", "state", expiry_state_name(r->state));

	if (j == NULL)
		return NULL;
	if (r->error != NULL) {
		json_object_set_new(j, "error", json_string(r->error));
		return j;
	}
	iso_time(r->not_before, nb, sizeof(nb));
	iso_time(r->not_after, na, sizeof(na));
	/* A CRL: issuer twice, its CRL number, thisUpdate/nextUpdate in the
	 * certificate fields (so one query covers both), and by their names. */
	if (r->crl)
		json_object_update_new(j, json_pack("{s:s, s:s}", "this_update", nb, "next_update",
						    na));
	json_object_update_new(j, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:b}", "subject",
					    r->subject, "issuer", r->issuer, "serial", r->serial,
					    "not_before", nb, "not_after", na, "not_after_unix",
					    (json_int_t)r->not_after, "days_left", (json_int_t)r->days,
					    "expired", r->expired));
	return j;
}

/* A certificate (not a CRL: its nextUpdate has its own remedy) within 30
 * days or expired: the expiry rules apply. */
static int rules_apply(const struct certscan *cs, int64_t now)
{
	for (size_t i = 0; i < certscan_count(cs); i++) {
		const struct cert_result *r = certscan_result(cs, i);
		if (!r->crl && r->error == NULL && expiry_rules_apply(r->not_after, now))
			return 1;
	}
	return 0;
}

static int print_json(FILE *f, const struct certscan *cs, const struct check_args *a)
{
	enum expiry_state worst = certscan_worst(cs);
	json_t *results = json_array(), *doc;
	size_t c[4];
	char *s;

	count_states(cs, c);
	for (size_t i = 0; i < certscan_count(cs); i++)
		json_array_append_new(results, result_json(certscan_result(cs, i)));
	doc = json_pack("{s:s, s:i, s:I, s:i, s:i, s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:o}", "state",
			expiry_state_name(worst), "exit_code", (int)worst, "now",
			(json_int_t)a->so.now, "warn_days", a->so.warn_days, "crit_days",
			a->so.crit_days, "counts", "OK", (json_int_t)c[EXPIRY_OK], "WARNING",
			(json_int_t)c[EXPIRY_WARNING], "CRITICAL", (json_int_t)c[EXPIRY_CRITICAL],
			"UNKNOWN", (json_int_t)c[EXPIRY_UNKNOWN], "files",
			(json_int_t)certscan_files(cs), "skipped_backups",
			(json_int_t)certscan_skipped_backups(cs), "results", results);
	if (doc && rules_apply(cs, a->so.now))
		json_object_set_new(doc, "expiry_rules", expiry_rules_json());
	if (doc == NULL || (s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
		json_decref(doc);
		log_error("could not build the JSON report");
		return -1;
	}
	fprintf(f, "%s\n", s);
	free(s);
	json_decref(doc);
	return 0;
}

/* ---- Prometheus ---- */

/* A label value as the exposition format wants it: \\, \" and \n escaped. */
static void prom_label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void prom_labels(FILE *f, const struct cert_result *r)
{
	fputs("{path=\"", f);
	prom_label_value(f, r->path);
	fputs(r->crl ? "\",issuer=\"" : "\",subject=\"", f);
	prom_label_value(f, r->subject ? r->subject : "");
	if (r->index >= 0)
		fprintf(f, "\",index=\"%d\"}", r->index);
	else
		fputs("\",index=\"\"}", f);
}

enum prom_value { PROM_NOT_AFTER, PROM_DAYS_LEFT, PROM_STATE };

/* One metric: HELP, TYPE and a sample per result of its kind (crl 0:
 * certificates, 1: CRLs) that was checked, except for the state, which
 * UNKNOWN entries have too (under the certificates'). */
static void prom_series(FILE *f, const struct certscan *cs, int crl, const char *name,
			const char *help_text, enum prom_value what)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help_text, name);
	for (size_t i = 0; i < certscan_count(cs); i++) {
		const struct cert_result *r = certscan_result(cs, i);
		long long v = what == PROM_NOT_AFTER ? (long long)r->not_after
			      : what == PROM_DAYS_LEFT ? (long long)r->days
						       : (long long)r->state;

		if ((r->error != NULL && (what != PROM_STATE || crl)) ||
		    (r->error == NULL && r->crl != crl))
			continue;
		fputs(name, f);
		prom_labels(f, r);
		fprintf(f, " %lld\n", v);
	}
}

static void print_prometheus(FILE *f, const struct certscan *cs)
{
	prom_series(f, cs, 0, "sftca_cert_not_after_seconds",
		    "notAfter of the certificate as a Unix timestamp.", PROM_NOT_AFTER);
	prom_series(f, cs, 0, "sftca_cert_days_left",
		    "Whole days left before notAfter, truncated; negative: whole days since expiry.",
		    PROM_DAYS_LEFT);
	prom_series(f, cs, 0, "sftca_cert_expiry_state",
		    "0 OK, 1 WARNING, 2 CRITICAL (or expired), 3 UNKNOWN (could not be checked).",
		    PROM_STATE);
	prom_series(f, cs, 1, "sftca_crl_next_update_seconds",
		    "nextUpdate of the CRL as a Unix timestamp.", PROM_NOT_AFTER);
	prom_series(f, cs, 1, "sftca_crl_days_left",
		    "Whole days left before nextUpdate, truncated; negative: whole days since.",
		    PROM_DAYS_LEFT);
	prom_series(f, cs, 1, "sftca_crl_expiry_state",
		    "0 OK, 1 WARNING, 2 CRITICAL (or past nextUpdate), with the certificate thresholds.",
		    PROM_STATE);
	fprintf(f, "# HELP sftca_check_worst_state Worst state of this run (the exit code of "
		   "sftca check).\n# TYPE sftca_check_worst_state gauge\n"
		   "sftca_check_worst_state %d\n",
		(int)certscan_worst(cs));
}

/* ---- driver ---- */

static int report(const struct certscan *cs, const struct check_args *a)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = a->out ? open_memstream(&buf, &len) : stdout;
	int r = 0;

	if (f == NULL) {
		log_error("out of memory");
		return -1;
	}
	if (a->format == FMT_JSON)
		r = print_json(f, cs, a);
	else if (a->format == FMT_PROMETHEUS)
		print_prometheus(f, cs);
	else
		print_human(f, cs, a);
	if (a->out == NULL)
		return fflush(stdout) == 0 ? r : -1;
	if (fclose(f) != 0)
		r = -1;
	if (r == 0)
		r = write_output_file(a->out, buf, len);
	free(buf);
	return r;
}

static int parse_days(const char *opt, const char *v, int *out)
{
	long n = parse_count(opt, v, 0, 36500);

	if (n < 0)
		return -1;
	*out = (int)n;
	return 0;
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		GLOBAL_LONG_OPTS,
		{ "warn-days", required_argument, NULL, 'w' },
		{ "crit-days", required_argument, NULL, 'c' },
		{ "prometheus", no_argument, NULL, 'p' },
		{ "include-backups", no_argument, NULL, 'b' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	struct check_args a = { .so = { .warn_days = 90, .crit_days = 30 }, .format = FMT_HUMAN };
	struct certscan *cs = NULL;
	int ch, prometheus = 0, rc = EXIT_CHECK_USAGE;

	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'w':
			if (parse_days("--warn-days", optarg, &a.so.warn_days) != 0)
				return EXIT_CHECK_USAGE;
			break;
		case 'c':
			if (parse_days("--crit-days", optarg, &a.so.crit_days) != 0)
				return EXIT_CHECK_USAGE;
			break;
		case 'p': prometheus = 1; break;
		case 'b': a.so.include_backups = 1; break;
		case 'o': a.out = optarg; break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		default:
			if (global_opt(ch, optarg) <= 0) {
				help(stderr);
				return EXIT_CHECK_USAGE;
			}
		}
	}
	if (a.so.crit_days > a.so.warn_days) {
		log_error("--crit-days %d is more than --warn-days %d: the critical window must lie "
			  "inside the warning window",
			  a.so.crit_days, a.so.warn_days);
		return EXIT_CHECK_USAGE;
	}
	if (prometheus && g_opts.json) {
		log_error("--json and --prometheus exclude each other");
		return EXIT_CHECK_USAGE;
	}
	if (optind >= argc) {
		log_error("check: name at least one certificate file or directory");
		help(stderr);
		return EXIT_CHECK_USAGE;
	}
	a.format = prometheus ? FMT_PROMETHEUS : g_opts.json ? FMT_JSON : FMT_HUMAN;
	a.so.now = (int64_t)time(NULL);
	if ((cs = certscan_new(&a.so)) == NULL)
		goto nomem;
	for (int i = optind; i < argc; i++)
		if (certscan_path(cs, argv[i]) != 0)
			goto nomem;
	rc = report(cs, &a) == 0 ? (int)certscan_worst(cs) : EXPIRY_UNKNOWN;
	if (a.format == FMT_HUMAN && rules_apply(cs, a.so.now))
		expiry_rules_print(stderr);
	goto out;
nomem:
	log_error("out of memory");
	rc = EXPIRY_UNKNOWN;
out:
	certscan_free(cs);
	return rc;
}
