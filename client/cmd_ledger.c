/* sftca ledger: the certificates the signer has on record, page by page. */
#include "client.h"
#include "sftca/v1/signer.pb-c.h"
#include "log.h"
#include "uuid.h"

#include <csv.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

enum format { FMT_TABLE, FMT_CSV, FMT_JSON };

static void help(FILE *f)
{
	fprintf(f,
		"usage: sftca ledger --ca ID [--peer UUID] [--state STATE] [--format table|csv|json]\n"
		"\n"
		"Lists the ledger rows of a CA: every serial the signer reserved, with its peer,\n"
		"state (pending, issued, revoked, abandoned), validity and requester. CSV has a\n"
		"header row; serials are uppercase hex as `openssl x509 -serial` prints them;\n"
		"times are UTC (ISO 8601). --json is the same as --format json.\n");
	global_help(f);
}

static void iso(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	buf[0] = '\0';
	if (t == 0)
		return;
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void csv_field(const char *s, int last)
{
	csv_fwrite(stdout, s, strlen(s));
	fputc(last ? '\n' : ',', stdout);
}

static const char *const csv_header[] = {
	"serial", "ca_id", "generation", "peer_uuid", "state", "not_before", "not_after",
	"issued_at", "requested_at", "requester", "subject", "cert_sha256", "spki_sha256",
	"revoked_at", "revocation_reason",
};

static void print_row(enum format fmt, const Sftca__V1__LedgerRow *r, int first)
{
	char nb[32], na[32], ia[32], ra[32], va[32], gen[16];

	iso(r->not_before, nb, sizeof(nb));
	iso(r->not_after, na, sizeof(na));
	iso(r->issued_at, ia, sizeof(ia));
	iso(r->requested_at, ra, sizeof(ra));
	iso(r->revoked_at, va, sizeof(va));
	snprintf(gen, sizeof(gen), "%u", r->generation);
	if (fmt == FMT_CSV) {
		const char *v[] = { r->serial,     r->ca_id,       gen,         r->peer_uuid,
				    r->state,      nb,             na,          ia,
				    ra,            r->requester,   r->subject,  r->cert_sha256,
				    r->spki_sha256, va,            r->revocation_reason };
		for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
			csv_field(v[i], i + 1 == sizeof(v) / sizeof(v[0]));
	} else if (fmt == FMT_JSON) {
		json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
				      "s:s, s:s, s:s}",
				      "serial", r->serial, "ca_id", r->ca_id, "generation",
				      (int)r->generation, "peer_uuid", r->peer_uuid, "state", r->state,
				      "not_before", nb, "not_after", na, "issued_at", ia,
				      "requested_at", ra, "requester", r->requester, "subject",
				      r->subject, "cert_sha256", r->cert_sha256, "spki_sha256",
				      r->spki_sha256, "revoked_at", va, "revocation_reason",
				      r->revocation_reason);
		char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		printf("%s  %s", first ? "" : ",\n", s ? s : "null");
		free(s);
		json_decref(j);
	} else {
		printf("%-34s %3u  %-36s  %-9s  %s\n", r->serial, r->generation, r->peer_uuid,
		       r->state, na);
	}
}

int cmd_ledger(int argc, char **argv)
{
	static const struct option opts[] = {
		GLOBAL_LONG_OPTS,
		{ "ca", required_argument, NULL, 'c' },
		{ "peer", required_argument, NULL, 'p' },
		{ "state", required_argument, NULL, 's' },
		{ "format", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	Sftca__V1__ListIssuedRequest q = SFTCA__V1__LIST_ISSUED_REQUEST__INIT;
	enum format fmt = FMT_TABLE;
	struct signer_conn *c;
	char *token = NULL;
	size_t total = 0;
	int ch, rc = EXIT_OK;

	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': q.ca_id = optarg; break;
		case 'p': q.peer_uuid = optarg; break;
		case 's': q.state = optarg; break;
		case 'f':
			if (strcmp(optarg, "table") == 0)
				fmt = FMT_TABLE;
			else if (strcmp(optarg, "csv") == 0)
				fmt = FMT_CSV;
			else if (strcmp(optarg, "json") == 0)
				fmt = FMT_JSON;
			else {
				log_error("--format '%s': table, csv or json", optarg);
				return EXIT_USAGE;
			}
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
	if (g_opts.json)
		fmt = FMT_JSON;
	if (optind != argc || q.ca_id[0] == '\0' || !uuid_is_canonical(q.ca_id)) {
		log_error("ledger: --ca ID (the FMC's UUID) is required");
		return EXIT_USAGE;
	}
	if (q.peer_uuid[0] && !uuid_is_canonical(q.peer_uuid)) {
		log_error("--peer '%s' is not a canonical lowercase UUID", q.peer_uuid);
		return EXIT_USAGE;
	}
	if ((c = client_connect()) == NULL)
		return EXIT_FAIL;
	if (fmt == FMT_CSV)
		for (size_t i = 0; i < sizeof(csv_header) / sizeof(csv_header[0]); i++)
			csv_field(csv_header[i], i + 1 == sizeof(csv_header) / sizeof(csv_header[0]));
	else if (fmt == FMT_JSON)
		printf("[\n");
	else
		printf("%-34s %3s  %-36s  %-9s  %s\n", "serial", "gen", "peer", "state", "notAfter");
	q.page_size = 1000;
	/* Page by page: memory stays flat however large the ledger is. */
	do {
		Sftca__V1__ListIssuedResponse *r = NULL;
		q.page_token = token ? token : "";
		if (client_call(c, "/sftca.v1.Signer/ListIssued", &q.base,
				&sftca__v1__list_issued_response__descriptor,
				(ProtobufCMessage **)&r) != 0) {
			rc = EXIT_FAIL;
			break;
		}
		for (size_t i = 0; i < r->n_rows; i++, total++)
			print_row(fmt, r->rows[i], total == 0);
		free(token);
		token = r->next_page_token[0] ? strdup(r->next_page_token) : NULL;
		protobuf_c_message_free_unpacked(&r->base, NULL);
	} while (token);
	if (fmt == FMT_JSON)
		printf("%s]\n", total ? "\n" : "");
	else if (fmt == FMT_TABLE && rc == EXIT_OK)
		printf("%zu rows\n", total);
	free(token);
	client_close(c);
	return rc;
}
