/* sftca verify: check every peer's files of an FMC tree offline (chain to
 * the bundle, key matches, CN is the directory's UUID, not expired, not
 * revoked); with --live, also the tunnels (see verify_live.c). */
#include "cainfo.h"
#include "client.h"
#include "errors.h"
#include "expiry.h"
#include "layout.h"
#include "log.h"
#include "msg.h"
#include "trust.h"
#include "uuid.h"
#include "verify_live.h"
#include "x509util.h"

#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PEER_ARGS 4096

struct verify_ctx {
	const char *ca_id, *root;
	struct trust *trust;
	int64_t now;
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
		"One line per peer; exit 1 if any is wrong.\n"
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

/* Check one pair directory; its problems into out (none set = fine). */
static void check_target(const struct verify_ctx *v, const struct layout_target *t,
			 struct sftca_msg *out, int64_t *not_after)
{
	char path[4300], cn[64], why[200];
	X509 *x = NULL;
	EVP_PKEY *k = NULL;

#define PROBLEM(...) msg_append(out, "; ", __VA_ARGS__)

	msg_clear(out);
	*not_after = 0;
	snprintf(path, sizeof(path), "%s/" LAYOUT_CERT, t->dir);
	if (access(path, F_OK) != 0 || pem_load_cert(path, &x) != 0) {
		PROBLEM("no readable certificate %s", path);
		goto out;
	}
	*not_after = x509_not_after(x);
	snprintf(path, sizeof(path), "%s/" LAYOUT_KEY, t->dir);
	if (access(path, F_OK) != 0 || pem_load_key(path, &k) != 0)
		PROBLEM("no readable key %s", path);
	else if (!x509_key_matches(x, k))
		PROBLEM("the key does not belong to the certificate");
	if (x509_name_cn(X509_get_subject_name(x), cn, sizeof(cn)) != 0)
		PROBLEM("the certificate has no CN");
	else if (strcmp(cn, t->uuid) != 0)
		PROBLEM("CN %s is not the %s %s", cn, t->self ? "CA id" : "directory's UUID", t->uuid);
	if (x509_verify_chain(x, trust_anchors(v->trust), 0, why, sizeof(why)) != 0)
		PROBLEM("does not chain to the bundle: %s", why);
	if (*not_after <= v->now)
		PROBLEM("expired %lld days ago", (long long)-expiry_days(*not_after, v->now, NULL));
	if (trust_revoked(v->trust, x))
		PROBLEM("revoked by the CRL");
out:
#undef PROBLEM
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(k);
}

static int load_ca_root(struct verify_ctx *v)
{
	struct sftca_msg m = { { 0 } };
	char cn[64];

	if ((v->trust = trust_load(v->root, &m)) == NULL) {
		log_error("%s", m.text);
		return SFTCA_ERR_INVALID;
	}
	if (x509_name_cn(X509_get_subject_name(sk_X509_value(trust_anchors(v->trust), 0)), cn,
			 sizeof(cn)) != 0 ||
	    strcmp(cn, v->ca_id) != 0)
		log_warn("%s/etc/sf/ca_root/" LAYOUT_BUNDLE ": the first CA is CN=%s, not %s: is --root the right FMC?",
			 v->root, cn, v->ca_id);
	return 0;
}

int cmd_verify(int argc, char **argv)
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
	static char peers[MAX_PEER_ARGS][40];
	struct verify_ctx v = { .now = time(NULL) };
	char (*all)[40] = NULL;
	size_t npeers = 0, n = 0, bad = 0;
	json_t *jpeers = NULL, *jlive = NULL;
	struct live_opts live = { .jobs = 8, .timeout_s = 10 };
	size_t live_failed = 0;
	int ch, rc = EXIT_FAIL, want_live = 0, live_ok = 1;
	long num;

	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': v.ca_id = optarg; break;
		case 'r': v.root = optarg; break;
		case 'p':
			if (!uuid_is_canonical(optarg) || npeers >= MAX_PEER_ARGS) {
				log_error("--peer '%s' is not a canonical lowercase UUID", optarg);
				return EXIT_USAGE;
			}
			snprintf(peers[npeers++], 40, "%s", optarg);
			break;
		case 'L': want_live = 1; break;
		case 'd': live.devices = optarg; break;
		case 'j':
		case 'T':
			if ((num = parse_count(ch == 'j' ? "--jobs" : "--tls-timeout", optarg, 1,
					       ch == 'j' ? 256 : 3600)) < 0)
				return EXIT_USAGE;
			if (ch == 'j')
				live.jobs = (int)num;
			else
				live.timeout_s = (int)num;
			break;
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
	if (optind != argc || !v.ca_id || !v.root || !uuid_is_canonical(v.ca_id)) {
		log_error("verify: --ca ID (the FMC's UUID) and --root DIR are required");
		return EXIT_USAGE;
	}
	if (want_live != (live.devices != NULL)) {
		log_error("verify: --live and --devices FILE go together");
		return EXIT_USAGE;
	}
	live.root = v.root;
	if (load_ca_root(&v) != 0)
		goto out;
	if (npeers == 0 && layout_list_peers(v.root, &all, &n) != 0)
		goto out;
	if (g_opts.json)
		jpeers = json_array();
	for (size_t i = 0; i <= (npeers ? npeers : n); i++) {
		struct layout_target t = { 0 };
		struct sftca_msg problems;
		char na[40] = "";
		int64_t not_after;

		if (i == (npeers ? npeers : n)) { /* the FMC itself comes last */
			char path[4300];
			snprintf(t.uuid, sizeof(t.uuid), "%s", v.ca_id);
			layout_self_dir(v.root, t.dir, sizeof(t.dir));
			t.self = 1;
			snprintf(path, sizeof(path), "%s/" LAYOUT_CERT, t.dir);
			if (npeers)
				break;
			if (access(path, F_OK) != 0) { /* a tree with peers only */
				if (!jpeers)
					printf("self %s  skipped: no FMC identity in %s\n", t.uuid, t.dir);
				break;
			}
		} else {
			snprintf(t.uuid, sizeof(t.uuid), "%s", npeers ? peers[i] : all[i]);
			layout_peer_pair_dir(v.root, t.uuid, t.dir, sizeof(t.dir));
		}
		check_target(&v, &t, &problems, &not_after);
		bad += msg_isset(&problems);
		if (not_after)
			fmt_time(not_after, na, sizeof(na));
		if (jpeers)
			json_array_append_new(jpeers,
					      json_pack("{s:s, s:b, s:s, s:b, s:s, s:I, s:s}", "uuid", t.uuid,
							"self", t.self, "dir", t.dir, "ok", !msg_isset(&problems),
							"not_after", na,
							"days_left", (json_int_t)expiry_days(not_after, v.now, NULL),
							"problems", problems.text));
		else if (msg_isset(&problems))
			printf("%s%s  BAD  %s\n", t.self ? "self " : "", t.uuid, problems.text);
		else
			printf("%s%s  OK   until %s (%lld days)\n", t.self ? "self " : "", t.uuid, na,
			       (long long)expiry_days(not_after, v.now, NULL));
	}
	if (!jpeers)
		printf("%zu bad\n", bad);
	if (want_live) { /* after the offline lines; a run that cannot start fails */
		int r = verify_live(&live, jpeers ? &jlive : NULL, &live_failed);
		live_ok = r == 0 && live_failed == 0;
		if (r != 0 && jpeers)
			jlive = json_pack("{s:s}", "error", sftca_strerror(r));
	}
	if (jpeers) {
		json_t *doc = json_pack("{s:s, s:s, s:o, s:I}", "ca_id", v.ca_id, "root", v.root,
					"peers", jpeers, "bad", (json_int_t)bad);
		jpeers = NULL;
		if (jlive != NULL)
			json_object_set_new(doc, "live", jlive);
		jlive = NULL;
		json_print(doc);
	}
	rc = bad || !live_ok ? EXIT_FAIL : EXIT_OK;
out:
	json_decref(jpeers);
	json_decref(jlive);
	free(all);
	trust_free(v.trust);
	return rc;
}
