/* sftca diagnose: sftunnel certificate failures in FMC/FTD logs, and the
 * sftca commands that fix them. */
#include "client.h"
#include "errors.h"
#include "log.h"
#include "logread.h"
#include "logscan.h"
#include "textclean.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PLACEHOLDER "<FMC-UUID>"
/* Like grep: 2 is trouble (usage, a log not read whole, out of memory). */
#define EXIT_TROUBLE EXIT_USAGE

struct logfile {
	const char *path;
	size_t stem_len, group, pos;
	long rotation; /* messages.3.gz: 3; messages: 0 */
	int gzipped;
	unsigned long lines;
	const char *error; /* NULL when read whole */
};

static void help(FILE *f)
{
	fprintf(f,
		"usage: sftca diagnose [--json] LOGFILE...\n"
		"\n"
		"Reads /var/log/messages-style logs of an FMC or FTD (/ngfw/var/log/messages on\n"
		"an FTD), rotated ones too (messages.1, messages.2.gz: gzip is recognised by\n"
		"its content), and reports the sftunnel failures in them: certificate verify\n"
		"errors ('err 10:certificate has expired' and other 'err N:'), 'SSL handshake\n"
		"fail', 'SSL Verification status', 'establishSSLConnection' failures on the\n"
		"FMC, TLS alerts the peer sent ('sslv3 alert certificate expired', 'tlsv1\n"
		"alert unknown ca' in SSL_renegotiate and establishSSLConnection errors: how\n"
		"an expired CA shows in an FMC's log); for each, how often, first and last time, hosts, peer addresses, the\n"
		"certificate names logged, and the sftca commands that fix it. '-' reads\n"
		"standard input. Rotated files of one log are read oldest first, so 'first'\n"
		"and 'last' follow time (syslog timestamps carry no year: shown as logged).\n"
		"\n"
		"  --json   one JSON document\n"
		"\n"
		"Exit code: 0 nothing found, 1 failures found, 2 usage error or a log that\n"
		"could not be read whole (the others are still reported).\n");
}

/* ---- input order ---- */

static void logfile_init(struct logfile *lf, const char *path, size_t pos)
{
	size_t n = strlen(path), d;

	memset(lf, 0, sizeof(*lf));
	lf->path = path;
	lf->pos = pos;
	if (n > 3 && strcmp(path + n - 3, ".gz") == 0)
		n -= 3;
	for (d = n; d > 0 && path[d - 1] >= '0' && path[d - 1] <= '9'; d--)
		;
	lf->stem_len = n;
	if (d < n && d > 1 && path[d - 1] == '.' && n - d <= 6) {
		lf->rotation = strtol(path + d, NULL, 10);
		lf->stem_len = d - 1;
	}
}

static int logfile_cmp(const void *a, const void *b)
{
	const struct logfile *x = a, *y = b;

	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	if (x->rotation != y->rotation)
		return x->rotation > y->rotation ? -1 : 1; /* higher number = older */
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Rotations of one log (same name but for ".N" and ".gz") oldest first;
 * different logs keep the order they were given in. */
static void order_files(struct logfile *lf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		lf[i].group = i;
		for (size_t j = 0; j < i; j++) {
			if (lf[j].stem_len == lf[i].stem_len &&
			    strncmp(lf[j].path, lf[i].path, lf[i].stem_len) == 0) {
				lf[i].group = lf[j].group;
				break;
			}
		}
	}
	qsort(lf, n, sizeof(*lf), logfile_cmp);
}

/* ---- reading ---- */

static int feed_sink(void *arg, const char *buf, size_t len)
{
	return logscan_feed(arg, buf, len);
}

/* 0, or SFTCA_ERR_NOMEM (fatal); other trouble is recorded in lf->error. */
static int scan_file(struct logscan *ls, struct logfile *lf)
{
	unsigned long before = logscan_lines(ls);
	struct stat st;
	int fd, r;

	if (strcmp(lf->path, "-") == 0) {
		fd = STDIN_FILENO;
	} else if ((fd = open(lf->path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		lf->error = strerror(errno);
		log_error("%s: %s", lf->path, lf->error);
		return 0;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		lf->error = "is a directory (name the log files in it)";
		log_error("%s: %s", lf->path, lf->error);
		r = 0;
		goto out;
	}
	r = logread_fd(fd, lf->path, feed_sink, ls, &lf->gzipped);
	if (r == SFTCA_ERR_IO || r == SFTCA_ERR_INVALID) {
		lf->error = r == SFTCA_ERR_IO ? "read error" : "corrupt or truncated gzip data";
		r = 0;
	}
	/* Past here r is 0 or SFTCA_ERR_NOMEM from the scanner. */
	if (logscan_finish(ls) != 0)
		r = SFTCA_ERR_NOMEM;
	lf->lines = logscan_lines(ls) - before;
out:
	if (fd != STDIN_FILENO)
		close(fd);
	return r;
}

/* ---- output ---- */

/* The one CA id all findings agree on, or NULL. */
static const char *sole_ca_id(const struct logscan *ls)
{
	const char *id = NULL;

	for (size_t i = 0; i < logscan_count(ls); i++) {
		const struct logscan_values *v = &logscan_finding(ls, i)->ca_ids;
		for (size_t k = 0; k < v->n; k++) {
			if (id != NULL && strcmp(id, v->v[k].text) != 0)
				return NULL;
			id = v->v[k].text;
		}
	}
	return id;
}

static void render_step(const char *step, const char *ca, char *buf, size_t len)
{
	const char *p = ca ? strstr(step, PLACEHOLDER) : NULL;

	if (p == NULL) {
		snprintf(buf, len, "%s", step);
		return;
	}
	snprintf(buf, len, "%.*s%s%s", (int)(p - step), step, ca, p + strlen(PLACEHOLDER));
}

static const char *kind_name(enum logscan_kind k)
{
	switch (k) {
	case LOGSCAN_VERIFY_ERROR: return "verify_error";
	case LOGSCAN_HANDSHAKE_FAIL: return "handshake_failed";
	case LOGSCAN_VERIFY_STATUS: return "verification_status";
	case LOGSCAN_FMC_CONNECT: return "fmc_connect_failed";
	case LOGSCAN_TLS_ALERT: return "tls_alert";
	}
	return "unknown";
}

static void print_values(const char *label, const struct logscan_values *v)
{
	if (v->n == 0)
		return;
	printf("  %-9s", label);
	for (size_t i = 0; i < v->n; i++)
		printf("%s%s (%lu)", i ? ", " : "", v->v[i].text, v->v[i].count);
	if (v->dropped)
		printf(", and %lu more", v->dropped);
	printf("\n");
}

/* Word-wrapped text after a label, lines of at most 78 columns. */
static void print_wrapped(const char *label, const char *text)
{
	const char *p = text;
	int col = printf("  %-9s", label), start = col;

	while (*p) {
		size_t w = strcspn(p, " ");
		if (col > start && col + 1 + (int)w > 78)
			col = printf("\n%*s", start, "") - 1;
		else if (col > start)
			col += printf(" ");
		col += printf("%.*s", (int)w, p);
		p += w;
		while (*p == ' ')
			p++;
	}
	printf("\n");
}

static void print_human(const struct logscan *ls, const struct logfile *lf, size_t nf)
{
	const char *ca = sole_ca_id(ls);
	unsigned long total = 0;

	for (size_t i = 0; i < logscan_count(ls); i++)
		total += logscan_finding(ls, i)->count;
	for (size_t i = 0; i < logscan_count(ls); i++) {
		const struct logscan_finding *f = logscan_finding(ls, i);
		const struct logscan_remedy *rm = logscan_remedy(f);
		char step[512];

		printf("%s%s: %lu time%s", i ? "\n" : "", f->title, f->count, f->count == 1 ? "" : "s");
		if (f->first[0])
			printf(", first %s, last %s", f->first, f->last);
		printf("\n");
		print_values("hosts:", &f->hosts);
		print_values("peers:", &f->peers);
		print_values("issuer:", &f->issuers);
		print_values("subject:", &f->subjects);
		print_values("logged:", &f->details);
		print_values("FMC CA:", &f->ca_ids);
		if (f->subject_is_ca && f->kind == LOGSCAN_VERIFY_ERROR && f->code == 10)
			print_wrapped("note:", "the certificate that expired is the InternalCA "
					       "itself: the CA has to be renewed.");
		if (rm == NULL)
			continue;
		print_wrapped("why:", rm->why);
		for (size_t k = 0; rm->steps[k]; k++) {
			render_step(rm->steps[k], ca, step, sizeof(step));
			printf("  %-9s%s\n", k == 0 ? "run:" : "", step);
		}
	}
	if (logscan_count(ls) > 0)
		printf("\n%zu kind%s of sftunnel failure, %lu occurrence%s,", logscan_count(ls),
		       logscan_count(ls) == 1 ? "" : "s", total, total == 1 ? "" : "s");
	else
		printf("no sftunnel certificate failures found");
	printf(" in %lu line%s of %zu file%s", logscan_lines(ls),
	       logscan_lines(ls) == 1 ? "" : "s", nf, nf == 1 ? "" : "s");
	if (logscan_count(ls) && ca == NULL)
		printf(" (replace %s with the FMC's UUID)", PLACEHOLDER);
	printf("\n");
	for (size_t i = 0; i < nf; i++) {
		char *path;
		if (lf[i].error == NULL)
			continue;
		path = text_clean(lf[i].path, strlen(lf[i].path), 0);
		printf("NOT READ WHOLE: %s: %s\n", path ? path : "?", lf[i].error);
		free(path);
	}
}

static json_t *values_json(const struct logscan_values *v)
{
	json_t *a = json_array();

	for (size_t i = 0; i < v->n; i++)
		json_array_append_new(a, json_pack("{s:s, s:I}", "value", v->v[i].text, "count",
						   (json_int_t)v->v[i].count));
	return a;
}

static json_t *finding_json(const struct logscan_finding *f, const char *ca)
{
	const struct logscan_remedy *rm = logscan_remedy(f);
	json_t *steps = json_array();
	char step[512];

	for (size_t k = 0; rm && rm->steps[k]; k++) {
		render_step(rm->steps[k], ca, step, sizeof(step));
		json_array_append_new(steps, json_string(step));
	}
	return json_pack("{s:s, s:s, s:o, s:o, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
			 "s:b, s:I, s:s, s:o}",
			 "id", f->id, "kind", kind_name(f->kind), "verify_error",
			 f->kind == LOGSCAN_VERIFY_ERROR ? json_integer(f->code) : json_null(),
			 "tls_alert",
			 f->kind == LOGSCAN_TLS_ALERT ? json_integer(f->code) : json_null(),
			 "title", f->title,
			 "count", (json_int_t)f->count, "first",
			 f->first[0] ? json_string(f->first) : json_null(), "last",
			 f->last[0] ? json_string(f->last) : json_null(), "hosts",
			 values_json(&f->hosts), "peers", values_json(&f->peers), "issuers",
			 values_json(&f->issuers), "subjects", values_json(&f->subjects),
			 "ca_ids", values_json(&f->ca_ids), "logged", values_json(&f->details),
			 "subject_is_ca", f->subject_is_ca, "values_dropped",
			 (json_int_t)(f->hosts.dropped + f->peers.dropped + f->issuers.dropped +
				      f->subjects.dropped + f->details.dropped),
			 "why", rm ? rm->why : "", "remedy", steps);
}

static int print_json(const struct logscan *ls, const struct logfile *lf, size_t nf, int rc)
{
	json_t *files = json_array(), *findings = json_array(), *doc;
	const char *ca = sole_ca_id(ls);
	char *s;

	for (size_t i = 0; i < nf; i++) {
		char *path = text_clean(lf[i].path, strlen(lf[i].path), 0);
		json_array_append_new(files, json_pack("{s:s?, s:b, s:I, s:o}", "path", path,
						       "gzip", lf[i].gzipped, "lines",
						       (json_int_t)lf[i].lines, "error",
						       lf[i].error ? json_string(lf[i].error)
								   : json_null()));
		free(path);
	}
	for (size_t i = 0; i < logscan_count(ls); i++)
		json_array_append_new(findings, finding_json(logscan_finding(ls, i), ca));
	doc = json_pack("{s:s, s:i, s:I, s:I, s:o, s:o}", "status",
			logscan_count(ls) ? "failures_found" : "clean", "exit_code", rc, "lines",
			(json_int_t)logscan_lines(ls), "long_lines",
			(json_int_t)logscan_long_lines(ls), "files", files, "findings", findings);
	if (doc == NULL || (s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
		json_decref(doc);
		log_error("could not build the JSON report");
		return -1;
	}
	puts(s);
	free(s);
	json_decref(doc);
	return 0;
}

int cmd_diagnose(int argc, char **argv)
{
	static const struct option opts[] = { GLOBAL_LONG_OPTS, { NULL, 0, NULL, 0 } };
	struct logfile *lf = NULL;
	struct logscan *ls = NULL;
	size_t nf = 0;
	int ch, rc = EXIT_USAGE, unread = 0;

	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		if (ch == 'h') {
			help(stdout);
			return EXIT_OK;
		}
		if (global_opt(ch, optarg) <= 0) {
			help(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		log_error("diagnose: name at least one log file (/var/log/messages on an FMC, "
			  "/ngfw/var/log/messages on an FTD)");
		help(stderr);
		return EXIT_USAGE;
	}
	nf = (size_t)(argc - optind);
	if ((lf = calloc(nf, sizeof(*lf))) == NULL || (ls = logscan_new()) == NULL)
		goto nomem;
	for (size_t i = 0; i < nf; i++)
		logfile_init(&lf[i], argv[optind + (int)i], i);
	order_files(lf, nf);
	for (size_t i = 0; i < nf; i++) {
		if (scan_file(ls, &lf[i]) != 0)
			goto nomem;
		unread += lf[i].error != NULL;
	}
	if (logscan_long_lines(ls))
		log_warn("%lu line%s longer than %d bytes: only the first %d bytes of each were "
			 "looked at",
			 logscan_long_lines(ls), logscan_long_lines(ls) == 1 ? "" : "s",
			 LOGSCAN_MAX_LINE, LOGSCAN_MAX_LINE);
	rc = unread ? EXIT_TROUBLE : logscan_count(ls) ? EXIT_FAIL : EXIT_OK;
	if (g_opts.json) {
		if (print_json(ls, lf, nf, rc) != 0)
			rc = EXIT_TROUBLE;
	} else {
		print_human(ls, lf, nf);
	}
	goto out;
nomem:
	log_error("out of memory");
	rc = EXIT_TROUBLE;
out:
	logscan_free(ls);
	free(lf);
	return rc;
}
