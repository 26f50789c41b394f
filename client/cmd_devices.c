/* sftca devices resolve: ask every device of devices.csv who it is (the
 * identity push checks, identify.h) and write the list again with the uuid
 * column filled, so that nobody types UUIDs by hand. */
#include "atomicfile.h"
#include "cainfo.h"
#include "client.h"
#include "connopts.h"
#include "devices.h"
#include "errors.h"
#include "fileio.h"
#include "identify.h"
#include "log.h"
#include "parallel.h"
#include "textclean.h"

#include <errno.h>
#include <libssh/libssh.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define DEVICES_MAX_TEXT (16u << 20)

struct resolve_args {
	struct conn_args conn;
	const char *out;
	int json;
};

enum row_state {
	ROW_RESOLVED,   /* the row had no uuid; now it has the device's */
	ROW_CONFIRMED,  /* the row's uuid is the device's */
	ROW_MISMATCH,   /* the row's uuid is not the device's: left as it is */
	ROW_UNRESOLVED, /* the device could not be asked, or could not say */
};

static const char *const state_name[] = { "resolved", "confirmed", "mismatch", "unresolved" };

struct row {
	const struct device *dev;
	enum row_state state;
	struct identity id;
	struct sftca_msg msg;      /* why not resolved; or a note (an FMC) */
};

struct resolve_run {
	const struct resolve_args *a;
	struct devconn_opts conn;
	struct device_list dl;
	struct row *rows;
	pthread_mutex_t mu, kh_mu;
	size_t done, count[4];
	json_t *json;
};

static void help(FILE *f)
{
	fprintf(f,
		"usage: sftca devices resolve --devices devices.csv [--out FILE] [--jobs N] [--ca ID]\n"
		"                  [--known-hosts FILE] [--accept-new-host-keys] [--identity FILE]\n"
		"                  [--shell direct|ftd] [--ssh-timeout S] [--device-timeout S]\n"
		"                  [--device-dir DIR] [--identity-file PATH] [--json]\n"
		"\n"
		"Log into every device of devices.csv the way sftca push does, read who it is (ftd: the\n"
		"UUID of 'show version'; direct: --identity-file, else the CN of the certificate it holds\n"
		"in DEVICE_DIR/<CA ID>/sftunnel-cert.pem), and write devices.csv again with the uuid\n"
		"column filled: to --out FILE (default: devices.csv itself), atomically, mode 0600, the\n"
		"previous file kept as FILE.backup.<UTC stamp>, every other field and the passwords byte\n"
		"for byte, a header row naming the columns (a four-column vendor file gains the uuid\n"
		"column). A row's uuid that the device contradicts is reported and left as it is. The FMC\n"
		"itself (its UUID is --ca ID) and an FMC HA peer (show version's Model is a Management\n"
		"Center) are named as such. Rows that could not be resolved are listed with why and left\n"
		"without a uuid; then the exit code is 1.\n"
		"\n"
		"  --ca ID      the FMC's UUID (direct devices' certificate directory; the FMC's row)\n");
	conn_help(f);
	global_help(f);
}

/* EXIT_* on help or a usage error, -1 to go on. */
static int parse_resolve(int argc, char **argv, struct resolve_args *a)
{
	static const struct option opts[] = {
		GLOBAL_LONG_OPTS,
		CONN_LONG_OPTS,
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, rc;

	memset(a, 0, sizeof(*a));
	conn_args_init(&a->conn, "/var/sf/peers");
	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		if ((rc = conn_opt(&a->conn, ch, optarg)) != 0) {
			if (rc < 0)
				return EXIT_USAGE;
			continue;
		}
		switch (ch) {
		case 'o': a->out = optarg; break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		default:
			if (global_opt(ch, optarg) <= 0) {
				help(stderr);
				return EXIT_USAGE;
			}
		}
	}
	if (optind != argc || !a->conn.devices) {
		log_error("devices resolve: --devices devices.csv is required");
		return EXIT_USAGE;
	}
	if (!a->out)
		a->out = a->conn.devices;
	if ((rc = conn_args_finish(&a->conn)) != 0)
		return rc;
	a->json = g_opts.json;
	return -1;
}

/* Ask one device who it is and judge the answer against its row. */
static void ask(struct resolve_run *r, struct row *w)
{
	const struct identify_opts io = { r->a->conn.ca_id, r->a->conn.device_dir,
					  r->a->conn.identity_file };
	const struct device *d = w->dev;
	enum device_shell shell = d->shell != SHELL_DEFAULT ? d->shell : r->a->conn.shell;
	struct devconn *c = NULL;
	struct sftca_msg err = { { 0 } };

	w->state = ROW_UNRESOLVED;
	if (devconn_open(d, shell, &r->conn, &c, &err) != 0 ||
	    identify_read(c, shell, &io, &w->id, &err) != 0) {
		msg_set(&w->msg, "%s", err.text);
		goto out;
	}
	if (w->id.uuid[0] == '\0') {
		msg_set(&w->msg, "identity not established (%s)", w->id.why.text);
		goto out;
	}
	if (d->uuid[0] && strcmp(d->uuid, w->id.uuid) != 0) {
		w->state = ROW_MISMATCH;
		msg_set(&w->msg, "identity mismatch: the device says %s, devices.csv says %s: "
			"left as it is (fix the row's ip or uuid)", w->id.uuid, d->uuid);
		goto out;
	}
	w->state = d->uuid[0] ? ROW_CONFIRMED : ROW_RESOLVED;
	/* Kept in the list (push skips it), but said. */
	(void)identify_not_a_peer(&w->id, r->a->conn.ca_id, &w->msg);
out:
	devconn_close(c);
}

static void print_row(struct resolve_run *r, const struct row *w)
{
	const struct device *d = w->dev;
	char shown[sizeof(w->msg.text)];

	/* Device text (a model, command output) is among it. */
	text_escape(w->msg.text, shown, sizeof(shown));
	if (r->json) {
		json_array_append_new(r->json,
				      json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s}", "device", d->name,
						"ip", d->ip, "port", d->port, "uuid",
						w->id.uuid[0] && w->state != ROW_MISMATCH ? w->id.uuid
											  : d->uuid,
						"result", state_name[w->state], "model", w->id.model,
						"message", shown));
		return;
	}
	if (w->state == ROW_RESOLVED || w->state == ROW_CONFIRMED)
		printf("[%zu/%zu] %s %s: %s %s%s%s%s\n", r->done, r->dl.n, d->name, d->ip,
		       state_name[w->state], w->id.uuid, shown[0] ? " (" : "", shown,
		       shown[0] ? ")" : "");
	else
		printf("[%zu/%zu] %s %s: FAILED: %s\n", r->done, r->dl.n, d->name, d->ip, shown);
	fflush(stdout);
}

static void resolve_one(void *ctx, size_t i)
{
	struct resolve_run *r = ctx;
	struct row *w = &r->rows[i];

	ask(r, w);
	pthread_mutex_lock(&r->mu);
	r->done++;
	r->count[w->state]++;
	print_row(r, w);
	pthread_mutex_unlock(&r->mu);
}

/* Write the list with the uuids learnt to a->out (0600, backup kept);
 * *changed = 0 when out is the input and no row gained a uuid (then
 * nothing is written). 0 or -1 (reported). */
static int write_list(struct resolve_run *r, const char *text, size_t len, const char *stamp,
		      int *changed, int *backup)
{
	struct stat st;
	const char **uuids = NULL;
	char *out = NULL, dir[4096], *slash;
	size_t outlen = 0;
	struct af_file f = { .mode = 0600 };
	int rc = -1, e = 0;

	*changed = 0;
	if ((uuids = calloc(r->dl.n ? r->dl.n : 1, sizeof(*uuids))) == NULL)
		goto out;
	for (size_t i = 0; i < r->dl.n; i++)
		if (r->rows[i].state == ROW_RESOLVED)
			uuids[i] = r->rows[i].id.uuid;
	if (devices_rewrite(r->a->conn.devices, text, len, uuids, r->dl.n, &out, &outlen) != 0)
		goto out;
	/* The input is not rewritten for nothing (a header or quoting alone). */
	*changed = strcmp(r->a->out, r->a->conn.devices) != 0 || r->count[ROW_RESOLVED] > 0;
	if (!*changed) {
		rc = 0;
		goto out;
	}
	if ((size_t)snprintf(dir, sizeof(dir), "%s", r->a->out) >= sizeof(dir)) {
		log_error("--out %s: path too long", r->a->out);
		goto out;
	}
	if ((slash = strrchr(dir, '/')) == NULL) {
		f.name = r->a->out;
		snprintf(dir, sizeof(dir), ".");
	} else {
		f.name = r->a->out + (slash - dir) + 1;
		slash[slash == dir ? 1 : 0] = '\0';
	}
	f.data = out;
	f.len = outlen;
	*backup = stat(r->a->out, &st) == 0;
	if (f.name[0] == '\0' || (e = af_write(dir, &f, stamp)) != 0) {
		log_error("%s could not be written: %s", r->a->out,
			  f.name[0] ? sftca_strerror(e) : "not a file name");
		goto out;
	}
	/* It holds passwords, whatever mode the file it replaced had. */
	if (chmod(r->a->out, 0600) != 0)
		log_warn("%s: chmod 600 failed: %s", r->a->out, strerror(errno));
	rc = 0;
out:
	secret_free(out, outlen);
	free(uuids);
	return rc;
}

/* The rows left without a (right) uuid, and where the list went. */
static int print_summary(struct resolve_run *r, int written, int changed, int backup,
			 const char *stamp)
{
	size_t bad = r->count[ROW_MISMATCH] + r->count[ROW_UNRESOLVED];
	json_t *left;

	if (r->json) {
		left = json_array();
		for (size_t i = 0; i < r->dl.n; i++)
			if (r->rows[i].state >= ROW_MISMATCH)
				json_array_append_new(left, json_string(r->rows[i].dev->name));
		json_print(json_pack("{s:o, s:{s:I, s:I, s:I, s:I}, s:o, s:s?, s:b}", "devices", r->json,
				     "summary", "resolved", (json_int_t)r->count[ROW_RESOLVED],
				     "confirmed", (json_int_t)r->count[ROW_CONFIRMED], "mismatch",
				     (json_int_t)r->count[ROW_MISMATCH], "unresolved",
				     (json_int_t)r->count[ROW_UNRESOLVED], "not_resolved", left,
				     "out", written && changed ? r->a->out : NULL, "written",
				     written && changed));
		(void)backup;
		r->json = NULL;
	} else {
		printf("%zu resolved, %zu confirmed, %zu identity mismatch, %zu not resolved\n",
		       r->count[ROW_RESOLVED], r->count[ROW_CONFIRMED], r->count[ROW_MISMATCH],
		       r->count[ROW_UNRESOLVED]);
		if (bad)
			printf("not resolved (left as they were):\n");
		for (size_t i = 0; i < r->dl.n; i++)
			if (r->rows[i].state >= ROW_MISMATCH) {
				char shown[sizeof(r->rows[i].msg.text)];
				text_escape(r->rows[i].msg.text, shown, sizeof(shown));
				printf("  %s %s: %s\n", r->rows[i].dev->name, r->rows[i].dev->ip, shown);
			}
		if (written && changed && backup)
			printf("written to %s (mode 0600; the previous file kept as %s.backup.%s)\n",
			       r->a->out, r->a->out, stamp);
		else if (written && changed)
			printf("written to %s (mode 0600)\n", r->a->out);
		else if (written)
			printf("%s unchanged: no row gained a uuid\n", r->a->out);
	}
	return bad || !written ? EXIT_FAIL : EXIT_OK;
}

static int cmd_resolve(int argc, char **argv)
{
	struct resolve_args a;
	struct resolve_run r = { 0 };
	char *text = NULL, stamp[32];
	size_t len = 0;
	struct stat st;
	int rc, written = 0, changed = 0, backup = 0;

	if ((rc = parse_resolve(argc, argv, &a)) != -1)
		return rc;
	r.a = &a;
	r.conn = a.conn.conn;
	r.conn.known_hosts_mu = &r.kh_mu;
	pthread_mutex_init(&r.mu, NULL);
	pthread_mutex_init(&r.kh_mu, NULL);
	rc = EXIT_FAIL;
	if (file_read_all(a.conn.devices, DEVICES_MAX_TEXT, &text, &len) != 0) {
		log_error("%s cannot be read", a.conn.devices);
		goto out;
	}
	(void)mlock(text, len + 1);
	if (stat(a.conn.devices, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
		log_warn("%s holds passwords but is readable by group or others (mode %04o): "
			 "the list written is 0600",
			 a.conn.devices, (unsigned)(st.st_mode & 07777));
	if (devices_parse(a.conn.devices, text, len, &r.dl) != 0)
		goto out;
	if ((r.rows = calloc(r.dl.n, sizeof(*r.rows))) == NULL)
		goto out;
	for (size_t i = 0; i < r.dl.n; i++)
		r.rows[i].dev = &r.dl.v[i];
	if (a.json)
		r.json = json_array();
	else
		printf("host keys: %s (%s)\n", a.conn.kh_path, a.conn.kh_source);
	ssh_init();
	parallel_for(a.conn.jobs, r.dl.n, resolve_one, &r);
	ssh_finalize();
	af_backup_stamp(stamp);
	written = write_list(&r, text, len, stamp, &changed, &backup) == 0;
	rc = print_summary(&r, written, changed, backup, stamp);
out:
	json_decref(r.json);
	free(r.rows);
	devices_free(&r.dl);
	secret_free(text, len);
	pthread_mutex_destroy(&r.mu);
	pthread_mutex_destroy(&r.kh_mu);
	return rc;
}

int cmd_devices(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "resolve") == 0)
		return cmd_resolve(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		help(stdout);
		return EXIT_OK;
	}
	log_error("devices: the subcommand is resolve (sftca devices resolve --help)");
	return EXIT_USAGE;
}
