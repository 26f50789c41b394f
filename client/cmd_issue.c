/* sftca issue: renew every sftunnel certificate of an FMC tree through the
 * signer. Peers are processed in chunks: while the signer signs chunk k
 * and its files are written, chunk k+1's keys and CSRs are prepared, so
 * the token never waits on the client and memory stays flat. */
#include "atomicfile.h"
#include "caheld.h"
#include "cainfo.h"
#include "client.h"
#include "errors.h"
#include "expiry.h"
#include "fileio.h"
#include "issue_peer.h"
#include "layout.h"
#include "log.h"
#include "parallel.h"
#include "peerfiles.h"
#include "treelock.h"
#include "trust.h"
#include "uuid.h"
#include "x509util.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* nextUpdate of the CRL written beside the bundle. Long, because a
 * verifier that enforces nextUpdate would drop every tunnel when it passes;
 * new revocations reach the FMC with `sftca issue` or `sftca crl`. */

/* What the command line asked for. */
struct issue_opts {
	const char *ca_id, *root;
	char (*peers)[40];    /* --peer, heap; none: every peer */
	size_t npeers;
	int self, rekey, force, dry_run, json;
	int jobs, batch, days, renew_days, retries;
	int timeout_s;        /* per signer call */
};

struct run {
	const struct issue_opts *o;
	struct issue_ctx ic;
	const char *root;
	struct signer_conn *rpc;
	int progress;
	struct layout_target *targets;
	size_t ntargets;

	pthread_mutex_t mu;   /* output and counters */
	size_t reported, n_current, n_issued, n_newkey, n_failed, n_planned, n_foreign;
	struct ca_held held;  /* the CA's generations, from the signer */
	json_t *json_foreign; /* --json: the foreign leaves */
	char unknown_bundle[SFTCA_MSG_MAX]; /* what an unknown cacert.pem holds, if it was let be */
	json_t *json_peers;
	atomic_int fatal;     /* a whole-call refusal: later chunks are not sent */
	int crl_failed;
	int rules;            /* the CA or a leaf found within 30 days or expired */
	int ok_doc;           /* the JSON document was printed */
	struct treelock *lock;
	struct trust *trust;
};

struct chunk {
	struct run *run;
	struct peer_work *w;
	size_t n;
	unsigned char **der; /* per item, from the signer */
	size_t *der_len;
	char (*serial)[80];
};

static void help(FILE *f)
{
	fprintf(f,
		"usage: sftca issue --ca ID --root DIR [--peer UUID]... [--self] [--rekey] [--force]\n"
		"                   [--jobs N] [--batch N] [--days N] [--renew-days N] [--dry-run] [--json]\n"
		"\n"
		"Renews the sftunnel certificates of the FMC tree under DIR (\"/\" on an FMC):\n"
		"every DIR/var/sf/peers/<UUID>/certs_pushed pair, or the peers named, and with\n"
		"--self the FMC's own DIR/etc/sf/keys/sftunnel-{cert,key}.pem (CN = the CA id).\n"
		"The key already there is re-certified, so device keys never move; --rekey (or a\n"
		"missing key) makes a new RSA-2048 key (EC P-256 for an EC CA). Writes are atomic,\n"
		"a file keeps the mode and owner it had (a new one its sibling's; else keys 0600,\n"
		"others 0644), the old file kept as NAME.backup.<UTC stamp>. Also writes the trust\n"
		"bundle DIR/etc/sf/ca_root/cacert.pem and the CRL DIR/etc/sf/ca_root/crl.pem.\n"
		"A cacert.pem holding a CA the signer does not know (the vendor's tool regenerated\n"
		"it) is not replaced without --force: issue says what it found and stops.\n"
		"A leaf no generation of the CA that the signer holds signed (a registration the\n"
		"FMC signed with another key, the vendor's script) is named as a foreign leaf and\n"
		"replaced. After a device registers, certify it: sftca issue --peer NEW-UUID.\n"
		"A peer whose certificate is from the current CA key and has more than --renew-days\n"
		"(default 90) left, or as many as the CA allows, is skipped (--force reissues).\n"
		"Re-running after an interruption finishes the job.\n"
		"\n"
		"  --jobs N     parallel key/CSR/file work (default: CPUs)\n"
		"  --batch N    CSRs per signer call (default 250, at most the signer's max_batch)\n"
		"  --days N     requested validity (default: the signer's, never past the CA)\n"
		"  --dry-run    say what would be done; change nothing\n");
	global_help(f);
}

static void progress_clear(struct run *r)
{
	if (r->progress)
		fputs("\r\033[K", stderr);
}

static void progress_draw(struct run *r)
{
	int width = 40, filled;

	if (!r->progress)
		return;
	filled = (int)(r->reported * (size_t)width / (r->ntargets ? r->ntargets : 1));
	fprintf(stderr, "\r[%.*s%*s] %zu/%zu", filled,
		"########################################", width - filled, "", r->reported,
		r->ntargets);
	fflush(stderr);
}

/* One line per peer (or a JSON object), as soon as it is settled. */
static void report(struct run *r, const struct peer_work *w)
{
	char na[40] = "";
	const char *result;

	if (w->not_after)
		fmt_time(w->not_after, na, sizeof(na));
	pthread_mutex_lock(&r->mu);
	r->reported++;
	if (w->found_not_after && expiry_rules_apply(w->found_not_after, (int64_t)time(NULL)))
		r->rules = 1;
	if (w->act == PEER_FAILED) {
		result = "failed";
		r->n_failed++;
	} else if (w->act == PEER_CURRENT) {
		result = "current";
		r->n_current++;
	} else if (r->ic.dry_run) {
		result = w->act == PEER_NEWKEY ? "would-issue-new-key" : "would-recertify";
		r->n_planned++;
	} else {
		result = "issued";
		r->n_issued++;
		r->n_newkey += w->act == PEER_NEWKEY;
	}
	if (r->json_peers) {
		json_array_append_new(r->json_peers,
				      json_pack("{s:s, s:b, s:s, s:s, s:s, s:s, s:b, s:s}", "uuid",
						w->t.uuid, "self", w->t.self, "result", result,
						"serial", w->serial, "not_after", na, "dir", w->t.dir,
						"new_key", w->act == PEER_NEWKEY, "message",
						w->message.text));
	} else {
		progress_clear(r);
		if (w->act == PEER_FAILED)
			printf("%s%s  FAILED   %s\n", w->t.self ? "self " : "", w->t.uuid, w->message.text);
		else if (w->act == PEER_CURRENT)
			printf("%s%s  current  until %s\n", w->t.self ? "self " : "", w->t.uuid, na);
		else if (r->ic.dry_run)
			printf("%s%s  would %s\n", w->t.self ? "self " : "", w->t.uuid,
			       w->act == PEER_NEWKEY ? "issue with a new key" : "re-certify its key");
		else
			printf("%s%s  issued   serial %s, until %s, %s\n", w->t.self ? "self " : "",
			       w->t.uuid, w->serial, na,
			       w->act == PEER_NEWKEY ? "new key" : "key kept");
		fflush(stdout);
		progress_draw(r);
	}
	pthread_mutex_unlock(&r->mu);
}

static void prepare_one(void *ctx, size_t i)
{
	struct chunk *c = ctx;
	c->w[i].act = PEER_CURRENT;
	peer_prepare(&c->run->ic, &c->w[i]);
}

static int retriable(grpc_status_code s)
{
	return s == GRPC_STATUS_UNAVAILABLE || s == GRPC_STATUS_DEADLINE_EXCEEDED ||
	       s == GRPC_STATUS_RESOURCE_EXHAUSTED;
}

/* Send the chunk's CSRs (retrying what failed for a passing reason). */
static void sign_chunk(struct chunk *c)
{
	struct run *r = c->run;
	Sftca__V1__IssueBatchRequest q = SFTCA__V1__ISSUE_BATCH_REQUEST__INIT;
	Sftca__V1__IssueItem *items = calloc(c->n, sizeof(*items));
	Sftca__V1__IssueItem **ptrs = calloc(c->n, sizeof(*ptrs));
	size_t *index = calloc(c->n, sizeof(*index));
	char last_error[512] = "";

	if (!items || !ptrs || !index) {
		for (size_t i = 0; i < c->n; i++)
			if (c->w[i].csr)
				msg_set(&c->w[i].message, "out of memory");
		goto out;
	}
	q.ca_id = (char *)r->ic.ca_id;
	q.days = (uint32_t)r->o->days;
	for (int attempt = 0; attempt <= r->o->retries && !r->fatal; attempt++) {
		Sftca__V1__IssueBatchResponse *resp = NULL;
		struct rpc_result res;
		size_t k = 0, used;
		int rc;

		for (size_t i = 0; i < c->n; i++) {
			if (c->w[i].act == PEER_FAILED || c->w[i].act == PEER_CURRENT || c->der[i])
				continue;
			sftca__v1__issue_item__init(&items[k]);
			items[k].peer_uuid = c->w[i].t.uuid;
			items[k].csr_der.data = c->w[i].csr;
			items[k].csr_der.len = c->w[i].csr_len;
			ptrs[k] = &items[k];
			index[k++] = i;
		}
		if (k == 0)
			break;
		if (attempt > 0) {
			log_warn("retrying %zu certificates (attempt %d of %d): %s", k, attempt + 1,
				 r->o->retries + 1, last_error);
			sleep(1u << (attempt - 1));
		}
		q.items = ptrs;
		q.n_items = k;
		rc = client_call_res(r->rpc, "/sftca.v1.Signer/IssueBatch", &q.base,
				     &sftca__v1__issue_batch_response__descriptor,
				     r->o->timeout_s * 1000, (ProtobufCMessage **)&resp, &res,
				     &used);
		if (rc != 0) {
			snprintf(last_error, sizeof(last_error), "%s: %.400s",
				 rpc_status_name(res.status), res.details);
			if (!retriable(res.status)) {
				log_error("IssueBatch: %s", last_error);
				r->fatal = 1;
			} else {
				/* A signer that answered slowly or is busy: the
				 * retry asks the next one of the group (one out
				 * of reach was stepped over in the call). */
				(void)client_move_on(r->rpc, used, last_error);
			}
			continue;
		}
		for (size_t j = 0; j < resp->n_results && j < k; j++) {
			const Sftca__V1__IssueResult *ir = resp->results[j];
			size_t i = index[j];
			if (ir->code == 0 && ir->cert_der.len > 0) {
				if ((c->der[i] = malloc(ir->cert_der.len)) != NULL) {
					memcpy(c->der[i], ir->cert_der.data, ir->cert_der.len);
					c->der_len[i] = ir->cert_der.len;
					snprintf(c->serial[i], sizeof(c->serial[i]), "%s", ir->serial);
				}
			} else if (!retriable((grpc_status_code)ir->code) || attempt == r->o->retries) {
				c->w[i].act = PEER_FAILED;
				msg_set(&c->w[i].message, "refused by the signer: %s (%s)",
					 ir->message, rpc_status_name((grpc_status_code)ir->code));
			} else {
				snprintf(last_error, sizeof(last_error), "%s",
					 ir->message);
			}
		}
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
out:
	for (size_t i = 0; i < c->n; i++) {
		struct peer_work *w = &c->w[i];
		if ((w->act == PEER_RECERTIFY || w->act == PEER_NEWKEY) && c->der[i] == NULL) {
			w->act = PEER_FAILED;
			if (!msg_isset(&w->message))
				msg_set(&w->message, "not issued: %.240s",
					 last_error[0] ? last_error : "signer call failed");
		}
	}
	free(items);
	free(ptrs);
	free(index);
}

#define WRITERS_PER_JOB 4

static void write_one(void *ctx, size_t i)
{
	struct chunk *c = ctx;
	struct peer_work *w = &c->w[i];

	if (c->der[i] && (w->act == PEER_RECERTIFY || w->act == PEER_NEWKEY))
		peer_write(&c->run->ic, w, c->der[i], c->der_len[i], c->serial[i]);
	report(c->run, w);
	peer_clear(w);
	free(c->der[i]);
	c->der[i] = NULL;
}

/* Sign (unless dry-run) and write one prepared chunk; runs beside the
 * preparation of the next one. */
static void *finish_chunk(void *arg)
{
	struct chunk *c = arg;

	if (!c->run->ic.dry_run)
		sign_chunk(c);
	/* Writing waits on fsync more than it computes: more writers than
	 * cores keep the cores busy with the next chunk meanwhile. */
	parallel_for(c->run->o->jobs * WRITERS_PER_JOB, c->n, write_one, c);
	return NULL;
}

static struct chunk *chunk_new(struct run *r, size_t first, size_t n)
{
	struct chunk *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->run = r;
	c->n = n;
	c->w = calloc(n, sizeof(*c->w));
	c->der = calloc(n, sizeof(*c->der));
	c->der_len = calloc(n, sizeof(*c->der_len));
	c->serial = calloc(n, sizeof(*c->serial));
	if (!c->w || !c->der || !c->der_len || !c->serial) {
		free(c->w);
		free(c->der);
		free(c->der_len);
		free(c->serial);
		free(c);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		c->w[i].t = r->targets[first + i];
	parallel_for(r->o->jobs, n, prepare_one, c);
	return c;
}

static void chunk_free(struct chunk *c)
{
	if (c == NULL)
		return;
	free(c->w);
	free(c->der);
	free(c->der_len);
	free(c->serial);
	free(c);
}

/* Chunks in a pipeline: prepare k+1 while k is signed and written. */
static void run_chunks(struct run *r)
{
	struct chunk *cur = NULL, *next;
	size_t first = 0;

	if (r->ntargets == 0)
		return;
	cur = chunk_new(r, 0, r->ntargets < (size_t)r->o->batch ? r->ntargets : (size_t)r->o->batch);
	first = cur ? cur->n : r->ntargets;
	while (cur) {
		pthread_t t;
		size_t n = r->ntargets - first < (size_t)r->o->batch ? r->ntargets - first : (size_t)r->o->batch;
		int threaded = pthread_create(&t, NULL, finish_chunk, cur) == 0;

		if (!threaded)
			finish_chunk(cur);
		next = n > 0 && !r->fatal ? chunk_new(r, first, n) : NULL;
		first += next ? n : 0;
		if (threaded)
			pthread_join(t, NULL);
		chunk_free(cur);
		cur = r->fatal ? NULL : next;
		/* The refusal may come while the next chunk was being prepared:
		 * its peers were never sent, so they are reported below. */
		if (r->fatal && next) {
			for (size_t i = 0; i < next->n; i++)
				peer_clear(&next->w[i]);
			first -= next->n;
			chunk_free(next);
		}
	}
	/* Peers never sent because the signer refused the run. */
	for (; r->fatal && first < r->ntargets; first++) {
		struct peer_work w = { .t = r->targets[first], .act = PEER_FAILED };
		msg_set(&w.message, "not attempted: the signer refused the run");
		report(r, &w);
	}
}

/* Active CA certificate and bundle from the signer. */
static int fetch_ca(struct run *r, char **bundle)
{
	Sftca__V1__GetCARequest q = SFTCA__V1__GET_CAREQUEST__INIT;
	Sftca__V1__GetCAResponse *resp = NULL;
	STACK_OF(X509) *sk = NULL;
	int rc;

	q.ca_id = (char *)r->ic.ca_id;
	if (client_call(r->rpc, "/sftca.v1.Signer/GetCA", &q.base,
			&sftca__v1__get_caresponse__descriptor, (ProtobufCMessage **)&resp) != 0)
		return SFTCA_ERR_RPC;
	rc = pem_parse_certs(resp->cert_pem, strlen(resp->cert_pem), &sk);
	if (rc == 0) {
		r->ic.ca_cert = sk_X509_shift(sk);
		r->ic.ec_family = EVP_PKEY_get_base_id(X509_get0_pubkey(r->ic.ca_cert)) == EVP_PKEY_EC;
		*bundle = strdup(resp->bundle_pem);
	}
	sk_X509_pop_free(sk, X509_free);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc == 0 && *bundle ? 0 : SFTCA_ERR_INVALID;
}

/* The trust bundle and a fresh CRL into DIR/etc/sf/ca_root. */
static int write_ca_root(struct run *r, const char *bundle)
{
	Sftca__V1__GetCRLRequest q = SFTCA__V1__GET_CRLREQUEST__INIT;
	Sftca__V1__GetCRLResponse *resp = NULL;
	char dir[4200], *old = NULL;
	size_t oldlen = 0;
	struct af_file f = { LAYOUT_BUNDLE, bundle, strlen(bundle), 0644 };
	/* Each stays as the tree had it (mode, owner), a new one as the other is. */
	const struct af_keep keep_bundle = { { LAYOUT_CRL } }, keep_crl = { { LAYOUT_BUNDLE } };
	int rc;

	if (layout_ca_root(r->root, dir, sizeof(dir)) != 0) {
		log_error("%s/etc/sf/ca_root: path too long", r->root);
		return SFTCA_ERR_INVALID;
	}
	if (mkdir_p(dir, 0755) != 0) {
		log_error("%s cannot be created", dir);
		return SFTCA_ERR_IO;
	}
	{
		char path[4300];
		if (layout_file(dir, LAYOUT_BUNDLE, path, sizeof(path)) == 0 && access(path, F_OK) == 0 && file_read_all(path, 1 << 20, &old, &oldlen) != 0)
			old = NULL;
	}
	if (old == NULL || oldlen != f.len || memcmp(old, bundle, f.len) != 0) {
		if ((rc = af_write_keep(dir, &f, &keep_bundle, r->ic.stamp)) != 0) {
			free(old);
			return rc;
		}
		if (!r->o->json)
			printf("trust bundle written: %s/" LAYOUT_BUNDLE "\n", dir);
	}
	free(old);
	q.ca_id = (char *)r->ic.ca_id;
	q.days = 0; /* until the CA expires: a CRL must never drop tunnels first */
	/* The CRL matters less than the certificates: without it, go on and
	 * say so (the run then exits 1). */
	if (client_call(r->rpc, "/sftca.v1.Signer/GetCRL", &q.base,
			&sftca__v1__get_crlresponse__descriptor, (ProtobufCMessage **)&resp) != 0) {
		log_warn("%s/" LAYOUT_CRL " not refreshed: the signer gave no CRL", dir);
		r->crl_failed = 1;
		return 0;
	}
	rc = 0;
	if (!trust_crl_unchanged(dir, resp->crl_pem)) {
		f.name = LAYOUT_CRL;
		f.data = resp->crl_pem;
		f.len = strlen(resp->crl_pem);
		/* The CRL it replaces is kept, as every file issue replaces. */
		rc = af_write_keep(dir, &f, &keep_crl, r->ic.stamp);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

/* argv into o (g_opts read here only): EXIT_OK to go on, -1 after --help,
 * EXIT_USAGE after saying what is wrong. */
static int parse_issue(int argc, char **argv, struct issue_opts *o)
{
	static const struct option opts[] = {
		GLOBAL_LONG_OPTS,
		{ "ca", required_argument, NULL, 'c' },
		{ "root", required_argument, NULL, 'r' },
		{ "peer", required_argument, NULL, 'p' },
		{ "self", no_argument, NULL, 's' },
		{ "rekey", no_argument, NULL, 'k' },
		{ "force", no_argument, NULL, 'f' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "batch", required_argument, NULL, 'b' },
		{ "days", required_argument, NULL, 'd' },
		{ "renew-days", required_argument, NULL, 'R' },
		{ "retries", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	long v;

	o->jobs = (int)sysconf(_SC_NPROCESSORS_ONLN);
	o->batch = 250;
	o->retries = 3;
	o->renew_days = 90;
	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->ca_id = optarg; break;
		case 'r': o->root = optarg; break;
		case 's': o->self = 1; break;
		case 'k': o->rekey = 1; break;
		case 'f': o->force = 1; break;
		case 'n': o->dry_run = 1; break;
		case 'p':
			if (peerfiles_name_peer(&o->peers, &o->npeers, optarg) != 0)
				return EXIT_USAGE;
			break;
		case 'j':
		case 'b':
		case 'd':
		case 'R':
		case 't':
			v = parse_count(ch == 'j' ? "--jobs" : ch == 'b' ? "--batch" : ch == 'd' ? "--days"
				       : ch == 'R' ? "--renew-days" : "--retries",
					optarg, ch == 'R' || ch == 't' ? 0 : 1, ch == 'd' ? 36500 : 100000);
			if (v < 0)
				return EXIT_USAGE;
			if (ch == 'j') o->jobs = (int)v;
			else if (ch == 'b') o->batch = (int)v;
			else if (ch == 'd') o->days = (int)v;
			else if (ch == 'R') o->renew_days = (int)v;
			else o->retries = (int)v;
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
	if (optind != argc || !o->ca_id || !o->root) {
		log_error("issue: --ca ID and --root DIR are required");
		return EXIT_USAGE;
	}
	if (!uuid_is_canonical(o->ca_id)) {
		log_error("--ca '%s' is not a canonical lowercase UUID (the FMC's UUID)", o->ca_id);
		return EXIT_USAGE;
	}
	o->json = g_opts.json;
	o->timeout_s = g_opts.timeout_s;
	return EXIT_OK;
}

/* Renew the targets: lock the tree, fetch the CA, write the trust bundle
 * and CRL, then the peers chunk by chunk (each reported as it settles).
 * 0 when the run went through (peers may still have failed), else an
 * error already reported. */
static int run_issue(struct run *r)
{
	const struct issue_opts *o = r->o;
	struct sftca_msg m = { { 0 } };
	char *bundle = NULL;
	int rc = SFTCA_ERR_INVALID, lr;

	if (layout_check_tree(r->root, &m) != 0 ||
	    (!o->dry_run && (r->lock = treelock_take(r->root, "issue", &m)) == NULL)) {
		log_error("%s", m.text);
		goto out;
	}
	if ((r->rpc = client_connect()) == NULL || fetch_ca(r, &bundle) != 0 ||
	    ca_held_fetch(r->rpc, o->ca_id, &r->held) != 0)
		goto out;
	r->rules = expiry_rules_apply(x509_not_after(r->ic.ca_cert), (int64_t)time(NULL));
	/* A tree without peers still has an FMC identity to renew. */
	lr = peerfiles_targets(r->root, o->ca_id, (const char (*)[40])r->held.others, r->held.nothers,
			       (const char (*)[40])o->peers, o->npeers, o->self, &r->targets,
			       &r->ntargets);
	if (r->targets == NULL || (lr != 0 && !o->self))
		goto out;
	/* Leaves no generation of ours signed: named, then replaced like any
	 * leaf not from the active key. */
	for (size_t i = 0; i < r->ntargets; i++) {
		struct foreign_leaf fl;
		if (!ca_held_foreign(&r->held, o->ca_id, r->root, &r->targets[i], &fl))
			continue;
		r->n_foreign++;
		if (o->json)
			json_array_append_new(r->json_foreign, ca_held_foreign_json(&fl));
		else
			ca_held_print_foreign(stdout, &fl, o->ca_id,
					      o->dry_run ? "this dry run would replace it"
							 : "this run replaces it");
	}
	/* The vendor's tool regenerated the CA: the FMC may be signing
	 * registrations with it. Replacing it is the operator's call; a dry
	 * run replaces nothing, so it only says so. */
	if (ca_held_unknown_bundle(&r->held, r->root, &m) > 0) {
		if (o->dry_run || o->force) {
			snprintf(r->unknown_bundle, sizeof(r->unknown_bundle), "%s", m.text);
			if (!o->json)
				printf("%s: %s\n", m.text,
				       o->force ? "replaced (--force), the old file kept as a backup"
						: "a run without --force stops here");
		} else {
			log_error("%s (the vendor's generate_certs.pl may have regenerated it; the "
				  "FMC then signs registrations with that CA). Nothing written. Check "
				  "it, then rerun with --force to replace it with the signer's bundle "
				  "(the old file is kept as a backup)",
				  m.text);
			goto out;
		}
	}
	r->progress = !o->json && isatty(STDERR_FILENO) && r->ntargets > 10;
	if (!o->dry_run && write_ca_root(r, bundle) != 0) {
		log_error("the trust bundle or CRL could not be written under %s/etc/sf/ca_root",
			  r->root);
		goto out;
	}
	/* After write_ca_root: the CRL the signer just gave. */
	if ((r->trust = trust_load(r->root, &m)) == NULL)
		log_warn("%s; revoked keys cannot be recognised in this run", m.text);
	r->ic.trust = r->trust;
	run_chunks(r);
	progress_clear(r);
	rc = 0;
out:
	free(bundle);
	return rc;
}

static void print_issue(struct run *r)
{
	if (r->o->json) {
		json_t *doc = json_pack(
			"{s:s, s:s, s:b, s:b, s:O, s:O, s:s?, s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "ca_id",
			r->ic.ca_id, "root", r->root, "dry_run", r->ic.dry_run, "crl_refreshed",
			!r->crl_failed && !r->ic.dry_run, "peers", r->json_peers, "foreign",
			r->json_foreign, "unknown_bundle",
			r->unknown_bundle[0] ? r->unknown_bundle : NULL, "summary", "issued",
			(json_int_t)r->n_issued, "new_keys", (json_int_t)r->n_newkey, "current",
			(json_int_t)r->n_current, "planned", (json_int_t)r->n_planned, "failed",
			(json_int_t)r->n_failed, "foreign", (json_int_t)r->n_foreign);
		if (doc && r->rules)
			json_object_set_new(doc, "expiry_rules", expiry_rules_json());
		json_print(doc);
		r->ok_doc = 1;
		return;
	}
	if (r->ic.dry_run)
		printf("dry run: %zu would be issued, %zu current, %zu failed\n", r->n_planned,
		       r->n_current, r->n_failed);
	else
		printf("%zu issued (%zu with new keys), %zu current, %zu failed\n", r->n_issued,
		       r->n_newkey, r->n_current, r->n_failed);
	if (r->n_foreign)
		printf("%zu foreign %s (named above) %s\n", r->n_foreign,
		       r->n_foreign == 1 ? "leaf" : "leaves", r->ic.dry_run ? "would be replaced" : "replaced");
	if (r->crl_failed)
		printf("the CRL was not refreshed (see above)\n");
}

int cmd_issue(int argc, char **argv)
{
	struct issue_opts o = { 0 };
	struct run r = { .o = &o };
	int rc = parse_issue(argc, argv, &o);

	if (rc != EXIT_OK)
		return rc < 0 ? EXIT_OK : rc;
	r.root = o.root;
	r.ic.ca_id = o.ca_id;
	r.ic.root = o.root;
	r.ic.rekey = o.rekey;
	r.ic.force = o.force;
	r.ic.dry_run = o.dry_run;
	r.ic.renew_days = o.renew_days;
	af_backup_stamp(r.ic.stamp);
	pthread_mutex_init(&r.mu, NULL);
	if (o.json) {
		r.json_peers = json_array();
		r.json_foreign = json_array();
	}
	rc = EXIT_FAIL;
	if (run_issue(&r) == 0) {
		print_issue(&r);
		rc = r.n_failed || r.crl_failed ? EXIT_FAIL : EXIT_OK;
	}
	/* In JSON the rules are a field of the document; a run that printed
	 * none (refused: an expired CA) says them on stderr. */
	if (r.rules && (!o.json || !r.ok_doc))
		expiry_rules_print(stderr);
	json_decref(r.json_peers);
	json_decref(r.json_foreign);
	treelock_release(r.lock);
	trust_free(r.trust);
	free(r.targets);
	free(o.peers);
	X509_free(r.ic.ca_cert);
	ca_held_free(&r.held);
	client_close(r.rpc);
	pthread_mutex_destroy(&r.mu);
	return rc;
}
