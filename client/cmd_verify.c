/* sftca verify: check every peer's files of an FMC tree offline (chain to
 * the bundle, key matches, CN is the directory's UUID, not expired, not
 * revoked); with --live, also the tunnels (see verify_live.c). */
#include "caheld.h"
#include "cainfo.h"
#include "client.h"
#include "errors.h"
#include "expiry.h"
#include "layout.h"
#include "log.h"
#include "msg.h"
#include "peerfiles.h"
#include "treecrl.h"
#include "trust.h"
#include "uuid.h"
#include "verify_live.h"
#include "x509util.h"

#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What the command line asked for. */
struct verify_opts {
	const char *ca_id, *root;
	char (*peers)[40];        /* --peer, heap; none: every peer and the FMC */
	size_t npeers;
	int json;
	int want_live;
	struct live_opts live;
};

/* One checked pair. */
struct verify_row {
	struct layout_target t;
	int skipped;              /* the FMC without an identity in a peers-only tree */
	int foreign;              /* no generation the signer holds signed it */
	json_t *jforeign;         /* --json: what and how to fix it */
	struct peerfiles_result res;
};

struct verify_report {
	int64_t now;
	struct verify_row *rows;
	size_t nrows, bad, foreign;
	int held_checked;         /* a signer was named: foreign leaves judged */
	json_t *jpeers, *jlive;   /* --json */
	int live_ok;
	struct tree_crl crl;      /* DIR/etc/sf/ca_root/crl.pem */
};

static void help(FILE *f)
{
	fprintf(f,
		"usage: sftca verify --ca ID --root DIR [--peer UUID]... [--json]\n"
		"                    [--live --devices FILE [--jobs N] [--tls-timeout SECONDS]]\n"
		"\n"
		"Checks, for every peer directory of the FMC tree under DIR and for the FMC's own\n"
		"identity in DIR/etc/sf/keys: the certificate chains to DIR/etc/sf/ca_root/cacert.pem,\n"
		"the key file holds its key, the subject CN is the directory's UUID (the CA id for\n"
		"the FMC), it has not expired, and DIR/etc/sf/ca_root/crl.pem does not revoke it.\n"
		"One line per peer. Then crl.pem's nextUpdate with the thresholds of sftca check\n"
		"(WARNING within 90 days, CRITICAL within 30): a CRL past it, or unreadable, is\n"
		"wrong (sftunnel.conf's proxy_crl names it). Exit 1 if anything is wrong.\n"
		"When a signer is named (--signer, SFTCA_SIGNER or the client config), also\n"
		"every foreign leaf: one that no generation of the CA the signer holds signed (a\n"
		"registration the FMC signed with another key, the vendor's script), named with\n"
		"its path, subject and issuer and the sftca issue command that replaces it.\n"
		"\n"
		"With --live, then, for every row of the devices.csv FILE: a TLS 1.2 handshake with\n"
		"IP:tunnel_port (default 8305) presenting the FMC identity DIR/etc/sf/keys/\n"
		"sftunnel-{cert,key}.pem and trusting only DIR/etc/sf/ca_root/cacert.pem, as\n"
		"sftunnel does; the device's certificate must verify against that bundle and its\n"
		"CN must be the row's uuid (a row without one fails). One line per device, OK or\n"
		"FAILED with the reason; exit 1 if any device fails.\n"
		"\n"
		"  --live               also check the tunnels of the devices in --devices\n"
		"  --devices FILE       devices.csv (see client/README-devices.md)\n"
		"  --jobs N             devices checked at once (default 8)\n"
		"  --tls-timeout S      connect + handshake limit per device (default 10)\n");
	global_help(f);
}

/* The tree's trust, warning when its first CA is not the one named. */
static struct trust *load_ca_root(const struct verify_opts *o)
{
	struct sftca_msg m = { { 0 } };
	struct trust *trust;
	char cn[64];

	if ((trust = trust_load(o->root, &m)) == NULL) {
		log_error("%s", m.text);
		return NULL;
	}
	if (x509_name_cn(X509_get_subject_name(sk_X509_value(trust_anchors(trust), 0)), cn,
			 sizeof(cn)) != 0 ||
	    strcmp(cn, o->ca_id) != 0)
		log_warn("%s/etc/sf/ca_root/" LAYOUT_BUNDLE ": the first CA is CN=%s, not %s: is --root the right FMC?",
			 o->root, cn, o->ca_id);
	return trust;
}

/* argv into o (g_opts read here only): EXIT_OK to go on, -1 after --help,
 * EXIT_USAGE after saying what is wrong. */
static int parse_verify(int argc, char **argv, struct verify_opts *o)
{
	static const struct option opts[] = {
		GLOBAL_LONG_OPTS,
		{ "ca", required_argument, NULL, 'c' },
		{ "root", required_argument, NULL, 'r' },
		{ "peer", required_argument, NULL, 'p' },
		{ "live", no_argument, NULL, 'L' },
		{ "devices", required_argument, NULL, 'd' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "tls-timeout", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	long num;

	o->live.jobs = 8;
	o->live.timeout_s = 10;
	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->ca_id = optarg; break;
		case 'r': o->root = optarg; break;
		case 'p':
			if (peerfiles_name_peer(&o->peers, &o->npeers, optarg) != 0)
				return EXIT_USAGE;
			break;
		case 'L': o->want_live = 1; break;
		case 'd': o->live.devices = optarg; break;
		case 'j':
		case 'T':
			if ((num = parse_count(ch == 'j' ? "--jobs" : "--tls-timeout", optarg, 1,
					       ch == 'j' ? 256 : 3600)) < 0)
				return EXIT_USAGE;
			if (ch == 'j')
				o->live.jobs = (int)num;
			else
				o->live.timeout_s = (int)num;
			break;
		case 'h':
			help(stdout);
			return -1;
		default:
			if (global_opt(ch, optarg) <= 0) {
				help(stderr);
				return EXIT_USAGE;
			}
		}
	}
	if (optind != argc || !o->ca_id || !o->root || !uuid_is_canonical(o->ca_id)) {
		log_error("verify: --ca ID (the FMC's UUID) and --root DIR are required");
		return EXIT_USAGE;
	}
	if (o->want_live != (o->live.devices != NULL)) {
		log_error("verify: --live and --devices FILE go together");
		return EXIT_USAGE;
	}
	o->live.root = o->root;
	o->json = g_opts.json;
	return EXIT_OK;
}

/* Judge every target offline: the peers named, else every peer and then
 * the FMC itself. 0, or an error already reported. */
static int run_verify(const struct verify_opts *o, struct verify_report *rep)
{
	struct peerfiles_policy pol = { .chain = 1, .renew_days = -1, .now = rep->now };
	struct layout_target *targets = NULL;
	struct ca_held held = { 0 };
	struct signer_conn *rpc = NULL;
	struct trust *trust;
	size_t n = 0;
	int r;

	/* What the signer holds decides what is foreign; offline, the tree's
	 * bundle is all there is (a regenerated one would fool it). */
	if (client_signer_named()) {
		if ((rpc = client_connect()) == NULL || ca_held_fetch(rpc, o->ca_id, &held) != 0) {
			ca_held_free(&held);
			client_close(rpc);
			return SFTCA_ERR_RPC;
		}
		rep->held_checked = 1;
	}
	if ((trust = load_ca_root(o)) == NULL) {
		r = SFTCA_ERR_INVALID;
		goto out;
	}
	pol.trust = trust;
	if ((r = peerfiles_targets(o->root, o->ca_id, (const char (*)[40])held.others, held.nothers,
				   (const char (*)[40])o->peers, o->npeers, o->npeers == 0, &targets,
				   &n)) != 0)
		goto out;
	if ((rep->rows = calloc(n ? n : 1, sizeof(*rep->rows))) == NULL) {
		log_error("out of memory for %zu results", n);
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct verify_row *row = &rep->rows[rep->nrows++];
		struct foreign_leaf fl;
		char path[4300];

		row->t = targets[i];
		/* A tree with peers only has no FMC identity to judge. */
		if (row->t.self && (layout_file(row->t.dir, LAYOUT_CERT, path, sizeof(path)) != 0 ||
				    access(path, F_OK) != 0)) {
			row->skipped = 1;
			continue;
		}
		rep->bad += peerfiles_check(&pol, &row->t, &row->res) != PF_OK;
		/* Named as found (--json: in the peer's object); bad once. */
		if (rep->held_checked &&
		    (row->foreign = ca_held_foreign(&held, o->ca_id, o->root, &row->t, &fl))) {
			rep->foreign++;
			rep->bad += row->res.verdict == PF_OK;
			if (!o->json)
				ca_held_print_foreign(stdout, &fl, o->ca_id, NULL);
			else
				row->jforeign = ca_held_foreign_json(&fl);
		}
	}
	/* A CRL past its nextUpdate can drop every tunnel at once. */
	tree_crl_judge(o->root, rep->now, &rep->crl);
	if (rep->crl.expired || (rep->crl.present && rep->crl.why[0]))
		rep->bad++;
out:
	free(targets);
	trust_free(trust);
	ca_held_free(&held);
	client_close(rpc);
	return r;
}

/* The offline lines, or their JSON array. */
static void print_verify(const struct verify_opts *o, struct verify_report *rep)
{
	if (o->json)
		rep->jpeers = json_array();
	for (size_t i = 0; i < rep->nrows; i++) {
		const struct verify_row *row = &rep->rows[i];
		const struct layout_target *t = &row->t;
		const struct peerfiles_result *res = &row->res;
		int ok = res->verdict == PF_OK && !row->foreign;
		char na[40] = "";

		if (row->skipped) {
			if (!o->json)
				printf("self %s  skipped: no FMC identity in %s\n", t->uuid, t->dir);
			continue;
		}
		if (res->not_after)
			fmt_time(res->not_after, na, sizeof(na));
		if (o->json)
			json_array_append_new(rep->jpeers,
					      json_pack("{s:s, s:b, s:s, s:b, s:s, s:O?, s:s, s:I, s:s}",
							"uuid", t->uuid, "self", t->self, "dir", t->dir,
							"ok", ok, "verdict",
							peerfiles_verdict_name(res->verdict), "foreign",
							row->jforeign, "not_after", na, "days_left",
							(json_int_t)expiry_days(res->not_after, rep->now, NULL),
							"problems", res->why.text));
		else if (!ok)
			printf("%s%s  BAD  %s%s%s\n", t->self ? "self " : "", t->uuid, res->why.text,
			       row->foreign && res->why.text[0] ? "; " : "",
			       row->foreign ? "foreign leaf (see above)" : "");
		else
			printf("%s%s  OK   until %s (%lld days)\n", t->self ? "self " : "", t->uuid, na,
			       (long long)expiry_days(res->not_after, rep->now, NULL));
	}
	if (!o->json) {
		tree_crl_print(stdout, &rep->crl);
		if (rep->foreign)
			printf("%zu foreign %s (named above)\n", rep->foreign,
			       rep->foreign == 1 ? "leaf" : "leaves");
		else if (!rep->held_checked)
			printf("foreign leaves not judged: no signer named (--signer)\n");
		printf("%zu bad\n", rep->bad);
	}
}

/* --live, after the offline lines; a run that cannot start fails. */
static void run_verify_live(const struct verify_opts *o, struct verify_report *rep)
{
	size_t failed = 0;
	int r = verify_live(&o->live, o->json ? &rep->jlive : NULL, &failed);

	rep->live_ok = r == 0 && failed == 0;
	if (r != 0 && o->json)
		rep->jlive = json_pack("{s:s}", "error", sftca_strerror(r));
}

static void print_verify_json(const struct verify_opts *o, struct verify_report *rep)
{
	json_t *doc = json_pack("{s:s, s:s, s:o, s:I}", "ca_id", o->ca_id, "root", o->root, "peers",
				rep->jpeers, "bad", (json_int_t)rep->bad);

	rep->jpeers = NULL;
	json_object_set_new(doc, "crl", tree_crl_json(&rep->crl));
	json_object_set_new(doc, "foreign", json_integer((json_int_t)rep->foreign));
	json_object_set_new(doc, "foreign_judged", json_boolean(rep->held_checked));
	if (rep->jlive != NULL)
		json_object_set_new(doc, "live", rep->jlive);
	rep->jlive = NULL;
	json_print(doc);
}

int cmd_verify(int argc, char **argv)
{
	struct verify_opts o = { 0 };
	struct verify_report rep = { .now = time(NULL), .live_ok = 1 };
	int rc = parse_verify(argc, argv, &o);

	if (rc != EXIT_OK) {
		rc = rc < 0 ? EXIT_OK : rc;
		goto out;
	}
	rc = EXIT_FAIL;
	if (run_verify(&o, &rep) != 0)
		goto out;
	print_verify(&o, &rep);
	if (o.want_live)
		run_verify_live(&o, &rep);
	if (o.json)
		print_verify_json(&o, &rep);
	rc = rep.bad || !rep.live_ok ? EXIT_FAIL : EXIT_OK;
out:
	json_decref(rep.jpeers);
	json_decref(rep.jlive);
	for (size_t i = 0; i < rep.nrows; i++)
		json_decref(rep.rows[i].jforeign);
	free(rep.rows);
	free(o.peers);
	return rc;
}
