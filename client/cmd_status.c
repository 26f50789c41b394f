/* sftca status: the token and every CA with its generations. */
#include "cainfo.h"
#include "client.h"
#include "log.h"
#include "treecrl.h"

#include <time.h>

#include <stdlib.h>
#include <string.h>

static const char *token_state_name(Sftca__V1__TokenState s)
{
	switch (s) {
	case SFTCA__V1__TOKEN_STATE__TOKEN_READY:
		return "ready";
	case SFTCA__V1__TOKEN_STATE__TOKEN_LOST:
		return "lost (recovering)";
	case SFTCA__V1__TOKEN_STATE__TOKEN_RECOVERING:
		return "recovering";
	case SFTCA__V1__TOKEN_STATE__TOKEN_FAILED:
		return "FAILED (operator needed)";
	default:
		return "unknown";
	}
}

static void help(FILE *f)
{
	fprintf(f, "usage: sftca status [--root DIR] [--json]\n\n"
		   "Shows the token state and, for every CA, its generations with state, key,\n"
		   "notAfter and days left. Warns on stderr when an active generation has fewer\n"
		   "than 90 days left, and says CRITICAL under 30, followed by the rules for an\n"
		   "expiring CA (what not to reboot, FMC first; --json: expiry_rules). With\n"
		   "--root, the FMC tree's\n"
		   "DIR/etc/sf/ca_root/crl.pem too: its nextUpdate, with the same thresholds.\n");
	global_help(f);
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = { GLOBAL_LONG_OPTS,
					      { "root", required_argument, NULL, 'r' },
					      { NULL, 0, NULL, 0 } };
	struct tree_crl crl = { .present = 0 };
	const char *root = NULL;
	Sftca__V1__GetStatusRequest req = SFTCA__V1__GET_STATUS_REQUEST__INIT;
	Sftca__V1__GetStatusResponse *resp = NULL;
	struct signer_conn *c;
	int ch, r, rules = 0;

	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		if (ch == 'h') {
			help(stdout);
			return EXIT_OK;
		}
		if (ch == 'r') {
			root = optarg;
			continue;
		}
		if (global_opt(ch, optarg) <= 0) {
			help(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		help(stderr);
		return EXIT_USAGE;
	}
	if ((c = client_connect()) == NULL)
		return EXIT_FAIL;
	r = client_call(c, "/sftca.v1.Signer/GetStatus", &req.base,
			&sftca__v1__get_status_response__descriptor, (ProtobufCMessage **)&resp);
	client_close(c);
	if (r != 0)
		return EXIT_FAIL;
	if (root)
		tree_crl_judge(root, (int64_t)time(NULL), &crl);
	for (size_t i = 0; i < resp->n_cas; i++)
		rules |= cainfo_rules_apply(resp->cas[i], resp->now);
	if (g_opts.json) {
		json_t *cas = json_array(), *doc;
		for (size_t i = 0; i < resp->n_cas; i++)
			json_array_append_new(cas, cainfo_json(resp->cas[i], resp->now));
		doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o}", "token_label",
				resp->token_label, "token_state", token_state_name(resp->token_state),
				"token_message", resp->token_message, "version", resp->version,
				"identity", resp->identity, "role", resp->role, "now",
				(json_int_t)resp->now, "cas", cas);
		if (root)
			json_object_set_new(doc, "crl", tree_crl_json(&crl));
		if (rules)
			json_object_set_new(doc, "expiry_rules", expiry_rules_json());
		json_print(doc);
	} else {
		printf("signer %s, token '%s': %s%s%s\n", resp->version, resp->token_label,
		       token_state_name(resp->token_state), resp->token_message[0] ? " - " : "",
		       resp->token_message);
		printf("you are %s (role %s)\n", resp->identity, resp->role);
		if (resp->n_cas == 0)
			printf("no CAs yet (sftca ca create --ca FMC-UUID)\n");
		for (size_t i = 0; i < resp->n_cas; i++) {
			printf("\n");
			cainfo_print(stdout, resp->cas[i], resp->now);
		}
		if (root) {
			printf("\n%s: ", root);
			tree_crl_print(stdout, &crl);
		}
	}
	if (root && (crl.state == EXPIRY_WARNING || crl.state == EXPIRY_CRITICAL))
		log_warn("%s: nextUpdate %s %lld days%s (%s): sftca issue --root %s writes one that "
			 "lasts until the CA expires",
			 crl.path, crl.expired ? "passed" : "in", (long long)(crl.expired ? -crl.days : crl.days),
			 crl.expired ? " ago" : "", expiry_state_name(crl.state), root);
	for (size_t i = 0; i < resp->n_cas; i++)
		cainfo_warn(resp->cas[i], resp->now);
	if (rules && !g_opts.json)
		expiry_rules_print(stderr);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return EXIT_OK;
}
