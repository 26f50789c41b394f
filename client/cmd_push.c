/* sftca push: copy each device's renewed files to it over SSH, many
 * devices at once, and record the ones that failed in FAILED_PUSH. */
#include "atomicfile.h"
#include "cainfo.h"
#include "client.h"
#include "connopts.h"
#include "devices.h"
#include "failedpush.h"
#include "layout.h"
#include "log.h"
#include "parallel.h"
#include "push.h"
#include "treelock.h"
#include "uuid.h"

#include <libssh/libssh.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What the command line asks for: parse_push fills it, and it is the only
 * reader of the global options; run and print get everything from here. */
struct push_args {
	struct push_opts o;
	struct conn_args conn;
	const char *failed_path, *retry_path;
	int json;
};

struct job {
	const struct device *dev;
	char uuid[40];
	const char *skip;          /* why it is not attempted, or NULL */
	const struct failed_device *from; /* --retry: the entry it answers */
	struct push_report rep;
};

/* One run: the plan, the devices' outcomes, and what the summary needs. */
struct push_run {
	struct push_opts o;
	struct device_list dl;
	struct failed_list retry;
	struct treelock *lock;
	pthread_mutex_t kh_mu;     /* known_hosts additions (--accept-new-host-keys) */
	struct job *jobs;
	size_t njobs;
	struct failedpush_writer *fw;
	pthread_mutex_t mu;
	size_t done, updated, unchanged, failed, unmatched;
	size_t unlisted;           /* failed, but without a FAILED_PUSH entry (no known peer) */
	int unresolved, written;
	json_t *json;              /* --json: the devices so far */
};

/* parse_push: go on to run the command. */
#define PUSH_GO (-1)

static void help(FILE *f)
{
	fprintf(f,
		"usage: sftca push --ca ID --root DIR --devices devices.csv [--failed-push FILE]\n"
		"                  [--retry FILE] [--jobs N] [--known-hosts FILE] [--accept-new-host-keys]\n"
		"                  [--identity FILE] [--restart-cmd CMD] [--no-restart] [--shell direct|ftd]\n"
		"                  [--ssh-timeout S] [--device-timeout S] [--device-dir DIR] [--json]\n"
		"                  [--identity-file PATH] [--trust-csv-identity] [--dry-run]\n"
		"\n"
		"sftca writes nothing to a device it has not identified.\n"
		"For every device of devices.csv (device_name,ip,admin_username,admin_password, optional\n"
		"header and columns uuid,port,shell,tunnel_port): connect over SSH, verify its host key\n"
		"(unknown: refused unless --accept-new-host-keys; changed: always refused), check its\n"
		"identity (ftd: the UUID of 'show version'; direct: --identity-file, else the CN of the\n"
		"certificate it holds) against the row's uuid (a mismatch: FAILED, nothing written; none\n"
		"readable: nothing written unless --trust-csv-identity). A row without a uuid takes the\n"
		"device's own, if the FMC tree has that peer ('unknown device' otherwise; 'sftca devices\n"
		"resolve' fills the column once). The FMC's own row (its UUID is the CA id) and an FMC HA\n"
		"peer (a Management Center model) are skipped. Then bring\n"
		"DEVICE_DIR/<CA ID>/{cacert.pem,sftunnel-cert.pem,sftunnel-key.pem} up to date from the\n"
		"FMC tree under DIR: files already identical are not touched, the key only travels when\n"
		"it changed, each file is uploaded beside, its hash checked, the old one kept as\n"
		"NAME.backup.<UTC stamp>, and all are renamed into place in one step; then sftunnel is\n"
		"restarted (default: '" PUSH_DEFAULT_RESTART "').\n"
		"Devices that fail go to FAILED_PUSH (default ./FAILED_PUSH) in the vendor's format; \n"
		"--retry FILE pushes only the devices a FAILED_PUSH file lists (sftca's or the vendor's)\n"
		"and takes their UUIDs from it for rows without one; it restarts sftunnel even where\n"
		"the files are already current, since the previous attempt may have stopped before.\n"
		"\n"
		"  --trust-csv-identity  push to a device whose identity cannot be read (no UUID line,\n"
		"                      no current certificate) on devices.csv's word; said per device\n"
		"  --dry-run           log in, identify and compare as a push does, and say what would\n"
		"                      be written and restarted; nothing is written (no file on any\n"
		"                      device, no FAILED_PUSH, no host key recorded) or restarted\n");
	conn_help(f);
	global_help(f);
}

/* A device for the FAILED_PUSH list, with the vendor's source and
 * destination paths. */
static void list_failed(struct push_run *r, const char *uuid, const char *name, const char *ip)
{
	char dir[4200], bundle[4300], pair[4200], dst[1024];

	if (r->fw == NULL)
		return;
	if (layout_ca_root(r->o.root, dir, sizeof(dir)) != 0 ||
	    layout_file(dir, LAYOUT_BUNDLE, bundle, sizeof(bundle)) != 0 ||
	    layout_peer_pair_dir(r->o.root, uuid, pair, sizeof(pair)) != 0 ||
	    (size_t)snprintf(dst, sizeof(dst), "%s/%s", r->o.device_dir, r->o.ca_id) >= sizeof(dst)) {
		log_error("%s: could not be added to the FAILED_PUSH list: path too long", name);
		return;
	}
	/* The sources as the FMC names them, for the vendor's manual procedure,
	 * not this host's copy of the tree. */
	if (failedpush_add(r->fw, uuid, name, ip, layout_on_fmc(r->o.root, bundle),
			   layout_on_fmc(r->o.root, pair), dst) != 0)
		log_error("%s: could not be added to the FAILED_PUSH list", name);
}

/* --retry: entries of the file no devices.csv row answers are not pushed
 * (no credentials), but they are reported and stay listed, so the next
 * FAILED_PUSH does not forget them. */
static size_t keep_unmatched(struct push_run *r, const struct failed_list *retry,
			     const char *retry_path)
{
	size_t n = 0;

	for (size_t k = 0; retry && k < retry->n; k++) {
		const struct failed_device *fd = &retry->v[k];
		size_t i = 0;

		while (i < r->njobs && r->jobs[i].from != fd)
			i++;
		if (i < r->njobs)
			continue;
		n++;
		log_error("%s %s %s: listed in %s, but no devices.csv row matches it (by uuid, "
			  "device_name or ip): not pushed, kept in the FAILED_PUSH list",
			  fd->name, fd->ip, fd->uuid, retry_path);
		list_failed(r, fd->uuid, fd->name, fd->ip);
	}
	return n;
}

/* Which devices to push and under which UUID. */
static int plan(struct push_run *r, const struct device_list *dl, const struct failed_list *retry)
{
	if ((r->jobs = calloc(dl->n ? dl->n : 1, sizeof(*r->jobs))) == NULL)
		return -1;
	for (size_t i = 0; i < dl->n; i++) {
		const struct device *d = &dl->v[i];
		struct job *j = &r->jobs[r->njobs];
		const struct failed_device *fd = NULL;

		j->dev = d;
		if (retry) {
			fd = failedpush_find(retry, d->uuid[0] ? d->uuid : NULL, d->name, d->ip);
			if (fd == NULL)
				continue; /* --retry: only the devices the file lists */
			j->from = fd;
		}
		/* Without either, the device says who it is (push_device). */
		if (d->uuid[0])
			snprintf(j->uuid, sizeof(j->uuid), "%s", d->uuid);
		else if (fd)
			snprintf(j->uuid, sizeof(j->uuid), "%s", fd->uuid);
		/* The vendor's list starts with the FMC itself: not a peer. */
		if (strcmp(j->uuid, r->o.ca_id) == 0)
			j->skip = "this is the FMC (its UUID is the CA id), not a device: nothing to push";
		r->njobs++;
	}
	return 0;
}

/* The command line into a; PUSH_GO, or the exit code (help, usage, a
 * known_hosts file that cannot be chosen). */
static int parse_push(int argc, char **argv, struct push_args *a)
{
	static const struct option opts[] = {
		GLOBAL_LONG_OPTS,
		CONN_LONG_OPTS,
		{ "root", required_argument, NULL, 'r' },
		{ "failed-push", required_argument, NULL, 'F' },
		{ "retry", required_argument, NULL, 'R' },
		{ "restart-cmd", required_argument, NULL, 'x' },
		{ "no-restart", no_argument, NULL, 'n' },
		{ "trust-csv-identity", no_argument, NULL, 'I' },
		{ "dry-run", no_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, rc;

	memset(a, 0, sizeof(*a));
	conn_args_init(&a->conn, PUSH_DEFAULT_DEVICE_DIR);
	a->failed_path = "FAILED_PUSH";
	a->o.restart_cmd = PUSH_DEFAULT_RESTART;
	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		if ((rc = conn_opt(&a->conn, ch, optarg)) != 0) {
			if (rc < 0)
				return EXIT_USAGE;
			continue;
		}
		switch (ch) {
		case 'r': a->o.root = optarg; break;
		case 'F': a->failed_path = optarg; break;
		case 'R': a->retry_path = optarg; break;
		case 'x': a->o.restart_cmd = optarg; break;
		case 'n': a->o.no_restart = 1; break;
		case 'I': a->o.trust_csv_identity = 1; break;
		case 'N': a->o.dry_run = 1; break;
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
	if (optind != argc || !a->conn.ca_id || !a->o.root || !a->conn.devices) {
		log_error("push: --ca ID, --root DIR and --devices devices.csv are required");
		return EXIT_USAGE;
	}
	/* Recording a host key is a write, and one a dry run must not make. */
	if (a->o.dry_run && conn_args_dry_run(&a->conn, "push") != 0)
		return EXIT_USAGE;
	if ((rc = conn_args_finish(&a->conn)) != 0)
		return rc;
	a->o.ca_id = a->conn.ca_id;
	a->o.device_dir = a->conn.device_dir;
	a->o.identity_file = a->conn.identity_file;
	a->o.default_shell = a->conn.shell;
	a->o.conn = a->conn.conn;
	a->json = g_opts.json;
	return PUSH_GO;
}

/* Load the devices, take the tree, and decide which devices to push under
 * which UUID. 0, or -1 (reported). */
static int plan_push(const struct push_args *a, struct push_run *r)
{
	struct sftca_msg m = { { 0 } };

	r->o = a->o;
	r->o.conn.known_hosts_mu = &r->kh_mu;
	if (devices_load(a->conn.devices, &r->dl) != 0)
		return -1;
	/* What issue writes and what push reads must not change under it (a
	 * dry run writes nothing, not even the lock file). */
	if (!r->o.dry_run && (r->lock = treelock_take(r->o.root, "push", &m)) == NULL) {
		log_error("%s", m.text);
		return -1;
	}
	if (a->retry_path && failedpush_load(a->retry_path, &r->retry) != 0)
		return -1;
	r->o.restart_unchanged = a->retry_path != NULL;
	af_backup_stamp(r->o.stamp);
	if (plan(r, &r->dl, a->retry_path ? &r->retry : NULL) < 0)
		return -1;
	if (!r->o.dry_run && (r->fw = failedpush_open(a->failed_path)) == NULL)
		return -1;
	if (a->json)
		r->json = json_array();
	r->unmatched = keep_unmatched(r, a->retry_path ? &r->retry : NULL, a->retry_path);
	return 0;
}

static void print_plan(const struct push_args *a, const struct push_run *r)
{
	if (a->json)
		return;
	printf("host keys: %s (%s)\n", a->conn.kh_path, a->conn.kh_source);
	if (a->retry_path)
		printf("retrying %zu of %zu devices in devices.csv: those %s lists (%zu entries, %zu "
		       "without a row)\n",
		       r->njobs, r->dl.n, a->retry_path, r->retry.n, r->unmatched);
}

/* One device's line (or JSON object), as soon as it is done; the caller
 * holds r->mu. */
static void print_device(struct push_run *r, const struct job *j)
{
	const struct device *d = j->dev;
	/* The row's (or --retry's) UUID, else the one the device gave. */
	const char *uuid = j->uuid[0] ? j->uuid : j->rep.uuid;
	const char *what = j->skip ? "skipped"
			   : j->rep.result == PUSH_FAILED ? "FAILED"
			   : j->rep.result == PUSH_UPDATED ? (r->o.dry_run ? "would update" : "updated")
							   : "unchanged";

	if (r->json) {
		json_array_append_new(r->json,
				      json_pack("{s:s, s:s, s:i, s:s, s:b, s:s, s:s, s:b, s:b, s:s}",
						"device", d->name, "ip", d->ip, "port", d->port, "uuid",
						uuid, "uuid_from_device", !j->uuid[0] && j->rep.uuid[0],
						"result", what, "files", j->rep.files, "restarted",
						j->rep.restarted, "would_restart", j->rep.would_restart,
						"message", j->skip ? j->skip : j->rep.msg.text));
	} else if (j->skip) {
		printf("[%zu/%zu] %s %s: skipped, %s\n", r->done, r->njobs, d->name, d->ip, j->skip);
	} else if (j->rep.result == PUSH_FAILED) {
		printf("[%zu/%zu] %s %s%s%s: FAILED: %s\n", r->done, r->njobs, d->name, d->ip,
		       uuid[0] ? " " : "", uuid, j->rep.msg.text);
	} else {
		printf("[%zu/%zu] %s %s %s: %s%s%s%s%s%s\n", r->done, r->njobs, d->name, d->ip, uuid,
		       what, j->rep.files[0] ? " " : "", j->rep.files,
		       j->rep.restarted	      ? ", sftunnel restarted"
		       : j->rep.would_restart ? ", would restart sftunnel"
					      : "",
		       j->rep.identity_trusted
			       ? " (identity not established: devices.csv trusted, --trust-csv-identity)"
			       : "",
		       j->uuid[0] ? "" : " (UUID read from the device)");
	}
	fflush(stdout);
}

static void push_one(void *ctx, size_t i)
{
	struct push_run *r = ctx;
	struct job *j = &r->jobs[i];
	int failed = 0, unresolved = 0, listed = 0;

	if (j->skip == NULL) {
		push_device(&r->o, j->dev, j->uuid, &j->rep);
		if (j->rep.result == PUSH_SKIPPED)
			j->skip = j->rep.msg.text;
		failed = j->rep.result == PUSH_FAILED;
		/* A row without a UUID whose device could not say (and one the
		 * FMC tree does not know) has no FAILED_PUSH entry: that needs a
		 * peer's UUID. */
		unresolved = failed && !j->uuid[0] && !j->rep.uuid[0];
		if ((listed = failed && !unresolved && !j->rep.unknown_device))
			list_failed(r, j->uuid[0] ? j->uuid : j->rep.uuid, j->dev->name, j->dev->ip);
	}
	pthread_mutex_lock(&r->mu);
	r->done++;
	r->unresolved += unresolved;
	r->unlisted += failed && !listed;
	if (j->skip)
		;
	else if (failed)
		r->failed++;
	else if (j->rep.result == PUSH_UPDATED)
		r->updated++;
	else
		r->unchanged++;
	print_device(r, j);
	pthread_mutex_unlock(&r->mu);
}

/* Push every planned device, --jobs at once, then write FAILED_PUSH. */
static void run_push(const struct push_args *a, struct push_run *r)
{
	ssh_init();
	parallel_for(a->conn.jobs, r->njobs, push_one, r);
	ssh_finalize();
	/* An old list is true until every device was reached or listed anew. */
	if (r->fw && failedpush_close(r->fw, r->unlisted == 0 && r->unmatched == 0, &r->written) != 0)
		log_error("%s could not be written", a->failed_path);
	r->fw = NULL;
}

/* The rows whose device turned out to be another: their ip or uuid is wrong. */
static void print_mismatches(const struct push_run *r)
{
	int any = 0;

	for (size_t i = 0; i < r->njobs; i++) {
		const struct job *j = &r->jobs[i];
		if (j->skip || !j->rep.identity_mismatch)
			continue;
		printf("%s%s (%s)", any ? ", " : "identity mismatch: fix the ip or uuid of these "
						 "devices.csv rows: ",
		       j->dev->name, j->dev->ip);
		any = 1;
	}
	if (any)
		putchar('\n');
}

/* The summary; the exit code. */
static int print_push(const struct push_args *a, struct push_run *r)
{
	if (r->json) {
		json_print(json_pack("{s:o, s:s, s:b, s:{s:I, s:I, s:I, s:I, s:I}, s:s?}", "devices",
				     r->json, "known_hosts", a->conn.kh_path, "dry_run", r->o.dry_run,
				     "summary", "updated", (json_int_t)r->updated, "unchanged",
				     (json_int_t)r->unchanged, "failed", (json_int_t)r->failed,
				     "unresolved", (json_int_t)r->unresolved, "retry_without_row",
				     (json_int_t)r->unmatched, "failed_push",
				     r->written == FAILEDPUSH_WRITTEN ? a->failed_path : NULL));
		r->json = NULL;
	} else {
		printf("%s%zu %s, %zu unchanged, %zu failed, %d without a UUID",
		       r->o.dry_run ? "dry run: " : "", r->updated,
		       r->o.dry_run ? "would be updated" : "updated", r->unchanged, r->failed,
		       r->unresolved);
		if (r->unmatched)
			printf(", %zu listed in %s without a devices.csv row", r->unmatched, a->retry_path);
		putchar('\n');
		print_mismatches(r);
		if (r->o.dry_run)
			printf("dry run: nothing written to any device, no FAILED_PUSH written, nothing "
			       "restarted\n");
		else if (r->written == FAILEDPUSH_WRITTEN)
			printf("failed devices written to %s (retry: sftca push ... --retry %s)\n",
			       a->failed_path, a->failed_path);
		else if (r->written == FAILEDPUSH_CLEARED)
			printf("no device failed: the previous %s was moved aside (kept as a "
			       "backup)\n",
			       a->failed_path);
	}
	return r->failed || r->unresolved || r->unmatched ? EXIT_FAIL : EXIT_OK;
}

static void push_run_free(const struct push_args *a, struct push_run *r)
{
	json_decref(r->json);
	if (r->fw && failedpush_close(r->fw, 0, &r->written) != 0)
		log_error("%s could not be written", a->failed_path);
	treelock_release(r->lock);
	free(r->jobs);
	devices_free(&r->dl);
	failedpush_free(&r->retry);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->kh_mu);
}

int cmd_push(int argc, char **argv)
{
	struct push_args a;
	struct push_run r = { 0 };
	int rc;

	if ((rc = parse_push(argc, argv, &a)) != PUSH_GO)
		return rc;
	pthread_mutex_init(&r.mu, NULL);
	pthread_mutex_init(&r.kh_mu, NULL);
	rc = EXIT_FAIL;
	if (plan_push(&a, &r) == 0) {
		print_plan(&a, &r);
		run_push(&a, &r);
		rc = print_push(&a, &r);
	}
	push_run_free(&a, &r);
	return rc;
}
