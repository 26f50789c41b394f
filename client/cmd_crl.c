/* sftca crl: a fresh CRL, signed in the token, written atomically. */
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
		"usage: sftca crl --ca ID --out FILE [--days N]\n"
		"\n"
		"Writes a CRL v2 (PEM) for every generation in the CA's trust bundle, active\n"
		"first, each signed by that generation's key in the token, with a CRL number,\n"
		"thisUpdate/nextUpdate and reason codes. nextUpdate: --days N from now (an\n"
		"admin's), default the latest notAfter of the bundle's CA certificates, so a\n"
		"CRL never expires before the CA does. On an FMC the file sftunnel.conf names\n"
		"is /etc/sf/ca_root/crl.pem.\n");
	global_help(f);
}

int cmd_crl(int argc, char **argv)
{
	static const struct option opts[] = {
		GLOBAL_LONG_OPTS,
		{ "ca", required_argument, NULL, 'c' },
		{ "out", required_argument, NULL, 'o' },
		{ "days", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	Sftca__V1__GetCRLRequest q = SFTCA__V1__GET_CRLREQUEST__INIT;
	Sftca__V1__GetCRLResponse *r = NULL;
	const char *out = NULL;
	struct signer_conn *c;
	char nu[40];
	long days;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': q.ca_id = optarg; break;
		case 'o': out = optarg; break;
		case 'd':
			if ((days = parse_count("--days", optarg, 1, 3650)) < 0)
				return EXIT_USAGE;
			q.days = (uint32_t)days;
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
	if (optind != argc || !uuid_is_canonical(q.ca_id) || out == NULL) {
		log_error("crl: --ca ID (the FMC's UUID) and --out FILE are required");
		return EXIT_USAGE;
	}
	if ((c = client_connect()) == NULL)
		return EXIT_FAIL;
	rc = client_call(c, "/sftca.v1.Signer/GetCRL", &q.base, &sftca__v1__get_crlresponse__descriptor,
			 (ProtobufCMessage **)&r);
	client_close(c);
	if (rc != 0)
		return EXIT_FAIL;
	rc = write_output_file(out, r->crl_pem, strlen(r->crl_pem)) == 0 ? EXIT_OK : EXIT_FAIL;
	fmt_time(r->next_update, nu, sizeof(nu));
	if (rc == EXIT_OK) {
		if (g_opts.json)
			json_print(json_pack("{s:s, s:s, s:I, s:I, s:I, s:i}", "ca_id", q.ca_id,
						     "out", out, "crl_number", (json_int_t)r->crl_number,
						     "this_update", (json_int_t)r->this_update,
						     "next_update", (json_int_t)r->next_update, "revoked",
						     (int)r->revoked));
		else
			printf("CRL number %llu for CA %s written to %s: %u revoked, next update %s\n",
			       (unsigned long long)r->crl_number, q.ca_id, out, r->revoked, nu);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return rc;
}
