/* sftca ca create|renew|rotate|finalize|cert */
#include "cainfo.h"
#include "client.h"
#include "log.h"
#include "uuid.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ca_args {
	const char *action, *ca, *key_type, *out, *custody;
	long days, generation;
	int force, bundle;
};

static void help(FILE *f)
{
	fprintf(f,
		"usage: sftca ca create   --ca ID [--key-type rsa:2048] [--days N] [--out FILE]\n"
		"       sftca ca renew    --ca ID [--days N] [--out FILE]\n"
		"       sftca ca rotate   --ca ID [--key-type T] [--days N] [--force] [--out FILE]\n"
		"       sftca ca finalize --ca ID [--force]\n"
		"       sftca ca cert     --ca ID [--bundle] [--generation N] [--out FILE]\n"
		"       sftca ca custody  --ca ID shared|exclusive\n"
		"\n"
		"create    new key pair generated inside the token, self-signed v3 CA certificate\n"
		"renew     new certificate for the same key and subject: every certificate issued\n"
		"          before keeps verifying (the no-downtime path when the key is sound)\n"
		"rotate    new key pair; the previous generation becomes 'retiring' and stays in\n"
		"          the trust bundle so old and new certificates trust each other;\n"
		"          refused without --force for a CA in shared custody (below)\n"
		"finalize  retiring generations leave the bundle; refused while live leaves of\n"
		"          them are on record, unless --force\n"
		"cert      print (or write) the active certificate, a generation, or the bundle\n"
		"custody   who holds the CA key besides the token (admin; recorded in the ledger\n"
		"          and the audit log). shared: the FMC kept its copy (an import) and signs\n"
		"          device registrations with it, so rotate is refused without --force\n"
		"          (the FMC would go on signing with the old key); renew instead.\n"
		"          exclusive: the token holds the only copy (created here, or the FMC's\n"
		"          copy destroyed): certify each new registration with sftca issue --peer\n"
		"\n"
		"ID is the FMC's UUID. Key types: rsa:2048 (default), rsa:3072, rsa:4096, ec:p256,\n"
		"ec:p384. --days defaults to 3650. --out writes the PEM atomically.\n");
	global_help(f);
}

static int write_out(const char *path, const char *pem)
{
	return write_output_file(path, pem, strlen(pem)) == 0 ? EXIT_OK : EXIT_FAIL;
}

static int report_change(const struct ca_args *a, const Sftca__V1__CAChangeResponse *r,
			 const char *verb)
{
	int64_t now = time(NULL);

	if (g_opts.json) {
		json_print(json_pack("{s:s, s:i, s:o, s:s, s:s}", "action", a->action, "generation",
				     (int)r->generation,
				     "ca", r->ca ? cainfo_json(r->ca, now) : json_null(), "cert_pem",
				     r->cert_pem, "bundle_pem", r->bundle_pem));
	} else {
		printf("CA %s %s: generation %u\n", a->ca, verb, r->generation);
		if (r->ca)
			cainfo_print(stdout, r->ca, now);
	}
	if (a->out && write_out(a->out, r->cert_pem) != EXIT_OK)
		return EXIT_FAIL;
	return EXIT_OK;
}

static int do_change(struct signer_conn *c, const struct ca_args *a)
{
	Sftca__V1__CAChangeResponse *r = NULL;
	const char *method, *verb;
	int rc;

	if (strcmp(a->action, "create") == 0) {
		Sftca__V1__CreateCARequest q = SFTCA__V1__CREATE_CAREQUEST__INIT;
		q.ca_id = (char *)a->ca;
		q.key_type = (char *)(a->key_type ? a->key_type : "");
		q.days = (uint32_t)a->days;
		method = "/sftca.v1.Signer/CreateCA";
		verb = "created in the token";
		rc = client_call(c, method, &q.base, &sftca__v1__cachange_response__descriptor,
				 (ProtobufCMessage **)&r);
	} else if (strcmp(a->action, "renew") == 0) {
		Sftca__V1__RenewCARequest q = SFTCA__V1__RENEW_CAREQUEST__INIT;
		q.ca_id = (char *)a->ca;
		q.days = (uint32_t)a->days;
		verb = "renewed (same key, same subject)";
		rc = client_call(c, "/sftca.v1.Signer/RenewCA", &q.base,
				 &sftca__v1__cachange_response__descriptor, (ProtobufCMessage **)&r);
	} else {
		Sftca__V1__RotateCARequest q = SFTCA__V1__ROTATE_CAREQUEST__INIT;
		q.ca_id = (char *)a->ca;
		q.key_type = (char *)(a->key_type ? a->key_type : "");
		q.days = (uint32_t)a->days;
		q.force = a->force;
		verb = "rotated to a new key (previous generation retiring, still trusted)";
		rc = client_call(c, "/sftca.v1.Signer/RotateCA", &q.base,
				 &sftca__v1__cachange_response__descriptor, (ProtobufCMessage **)&r);
	}
	if (rc != 0)
		return EXIT_FAIL;
	rc = report_change(a, r, verb);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return rc;
}

static int do_finalize(struct signer_conn *c, const struct ca_args *a)
{
	Sftca__V1__FinalizeCARequest q = SFTCA__V1__FINALIZE_CAREQUEST__INIT;
	Sftca__V1__FinalizeCAResponse *r = NULL;

	q.ca_id = (char *)a->ca;
	q.force = a->force;
	if (client_call(c, "/sftca.v1.Signer/FinalizeCA", &q.base,
			&sftca__v1__finalize_caresponse__descriptor, (ProtobufCMessage **)&r) != 0)
		return EXIT_FAIL;
	if (g_opts.json)
		json_print(json_pack("{s:s, s:i, s:I, s:o}", "action", "finalize", "retired",
				     (int)r->retired, "live_retiring_leaves",
				     (json_int_t)r->live_retiring_leaves, "ca",
				     r->ca ? cainfo_json(r->ca, time(NULL)) : json_null()));
	else
		printf("CA %s finalized: %u generation%s retired; %llu live leaves of them were "
		       "still on record%s\n",
		       a->ca, r->retired, r->retired == 1 ? "" : "s",
		       (unsigned long long)r->live_retiring_leaves,
		       r->live_retiring_leaves ? " (forced)" : "");
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return EXIT_OK;
}

static int do_custody(struct signer_conn *c, const struct ca_args *a)
{
	Sftca__V1__SetCustodyRequest q = SFTCA__V1__SET_CUSTODY_REQUEST__INIT;
	Sftca__V1__SetCustodyResponse *r = NULL;

	q.ca_id = (char *)a->ca;
	q.custody = strcmp(a->custody, "shared") == 0 ? SFTCA__V1__CUSTODY__CUSTODY_SHARED
						       : SFTCA__V1__CUSTODY__CUSTODY_EXCLUSIVE;
	if (client_call(c, "/sftca.v1.Signer/SetCustody", &q.base,
			&sftca__v1__set_custody_response__descriptor, (ProtobufCMessage **)&r) != 0)
		return EXIT_FAIL;
	if (g_opts.json)
		json_print(json_pack("{s:s, s:s, s:s, s:o}", "action", "custody", "previous",
				     custody_wire_name(r->previous), "custody", a->custody, "ca",
				     r->ca ? cainfo_json(r->ca, time(NULL)) : json_null()));
	else if (r->ca && r->previous == r->ca->custody)
		printf("CA %s custody is already %s: nothing changed\n", a->ca, a->custody);
	else
		printf("CA %s custody: %s -> %s\n", a->ca, custody_wire_name(r->previous),
		       a->custody);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return EXIT_OK;
}

static int do_cert(struct signer_conn *c, const struct ca_args *a)
{
	Sftca__V1__GetCARequest q = SFTCA__V1__GET_CAREQUEST__INIT;
	Sftca__V1__GetCAResponse *r = NULL;
	const char *pem;
	int rc = EXIT_OK;

	q.ca_id = (char *)a->ca;
	q.generation = (uint32_t)a->generation;
	if (client_call(c, "/sftca.v1.Signer/GetCA", &q.base, &sftca__v1__get_caresponse__descriptor,
			(ProtobufCMessage **)&r) != 0)
		return EXIT_FAIL;
	pem = a->bundle ? r->bundle_pem : r->cert_pem;
	if (a->out)
		rc = write_out(a->out, pem);
	else if (g_opts.json)
		json_print(json_pack("{s:s, s:i, s:s, s:s}", "ca_id", r->ca_id, "generation",
				     (int)r->generation, "cert_pem", r->cert_pem, "bundle_pem",
				     r->bundle_pem));
	else
		fputs(pem, stdout);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return rc;
}

int cmd_ca(int argc, char **argv)
{
	static const struct option opts[] = {
		GLOBAL_LONG_OPTS,
		{ "ca", required_argument, NULL, 'c' },
		{ "key-type", required_argument, NULL, 'k' },
		{ "days", required_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' },
		{ "bundle", no_argument, NULL, 'b' },
		{ "generation", required_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 },
	};
	struct ca_args a = { 0 };
	struct signer_conn *c;
	int ch, r;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		help(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	a.action = argv[1];
	if (strcmp(a.action, "create") && strcmp(a.action, "renew") && strcmp(a.action, "rotate") &&
	    strcmp(a.action, "finalize") && strcmp(a.action, "cert") &&
	    strcmp(a.action, "custody")) {
		log_error("unknown action 'ca %s' (create, renew, rotate, finalize, cert, custody)",
			  a.action);
		return EXIT_USAGE;
	}
	/* Parse after the action word: argv[1] plays the role of argv[0]. */
	argc--;
	argv++;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': a.ca = optarg; break;
		case 'k': a.key_type = optarg; break;
		case 'o': a.out = optarg; break;
		case 'f': a.force = 1; break;
		case 'b': a.bundle = 1; break;
		case 'd':
			if ((a.days = parse_count("--days", optarg, 1, 36500)) < 0)
				return EXIT_USAGE;
			break;
		case 'g':
			if ((a.generation = parse_count("--generation", optarg, 1, 100000)) < 0)
				return EXIT_USAGE;
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
	if (optind < 1)
		optind = 1;
	/* custody takes its value as the one word after the options. */
	if (strcmp(a.action, "custody") == 0) {
		if (optind + 1 != argc ||
		    (strcmp(argv[optind], "shared") != 0 && strcmp(argv[optind], "exclusive") != 0)) {
			log_error("ca custody: say shared or exclusive (sftca ca custody --ca ID "
				  "shared|exclusive)");
			return EXIT_USAGE;
		}
		a.custody = argv[optind++];
	}
	if (optind != argc || a.ca == NULL) {
		log_error("ca %s: --ca ID is required", a.action);
		return EXIT_USAGE;
	}
	if (!uuid_is_canonical(a.ca)) {
		log_error("--ca '%s' is not a canonical lowercase UUID (the FMC's UUID)", a.ca);
		return EXIT_USAGE;
	}
	if ((c = client_connect()) == NULL)
		return EXIT_FAIL;
	if (strcmp(a.action, "finalize") == 0)
		r = do_finalize(c, &a);
	else if (strcmp(a.action, "cert") == 0)
		r = do_cert(c, &a);
	else if (strcmp(a.action, "custody") == 0)
		r = do_custody(c, &a);
	else
		r = do_change(c, &a);
	client_close(c);
	return r;
}
