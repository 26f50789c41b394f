/* sftca revoke: mark a serial revoked in the ledger; the next CRL lists it. */
#include "cainfo.h"
#include "client.h"
#include "log.h"
#include "sftca/v1/signer.pb-c.h"
#include "uuid.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f)
{
	fprintf(f,
		"usage: sftca revoke --ca ID --serial HEX [--reason REASON]\n"
		"\n"
		"Revokes a certificate the CA issued (serial as `openssl x509 -serial` prints it;\n"
		"case, 0x and colons do not matter). Reasons (RFC 5280): unspecified (default),\n"
		"keyCompromise, cACompromise, affiliationChanged, superseded,\n"
		"cessationOfOperation, privilegeWithdrawn, aACompromise. Then publish a CRL:\n"
		"sftca crl --ca ID --out crl.pem (sftca issue also writes etc/sf/ca_root/crl.pem).\n");
	global_help(f);
}

int cmd_revoke(int argc, char **argv)
{
	static const struct option opts[] = {
		GLOBAL_LONG_OPTS,
		{ "ca", required_argument, NULL, 'c' },
		{ "serial", required_argument, NULL, 's' },
		{ "reason", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	Sftca__V1__RevokeRequest q = SFTCA__V1__REVOKE_REQUEST__INIT;
	Sftca__V1__RevokeResponse *r = NULL;
	struct signer_conn *c;
	char when[40];
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': q.ca_id = optarg; break;
		case 's': q.serial = optarg; break;
		case 'r': q.reason = optarg; break;
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
	if (optind != argc || !uuid_is_canonical(q.ca_id) || q.serial[0] == '\0') {
		log_error("revoke: --ca ID (the FMC's UUID) and --serial HEX are required");
		return EXIT_USAGE;
	}
	if ((c = client_connect()) == NULL)
		return EXIT_FAIL;
	rc = client_call(c, "/sftca.v1.Signer/Revoke", &q.base, &sftca__v1__revoke_response__descriptor,
			 (ProtobufCMessage **)&r);
	client_close(c);
	if (rc != 0)
		return EXIT_FAIL;
	fmt_time(r->revoked_at, when, sizeof(when));
	if (g_opts.json)
		json_print(json_pack("{s:s, s:s, s:i, s:s, s:I}", "ca_id", q.ca_id, "serial",
					     r->serial, "generation", (int)r->generation, "reason",
					     r->reason, "revoked_at", (json_int_t)r->revoked_at));
	else
		printf("serial %s of CA %s (generation %u) revoked at %s, reason %s\n"
		       "publish it: sftca crl --ca %s --out crl.pem\n",
		       r->serial, q.ca_id, r->generation, when, r->reason, q.ca_id);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return EXIT_OK;
}
