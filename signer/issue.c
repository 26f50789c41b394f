/* IssueBatch: validate every item, reserve serials in the ledger (one
 * transaction), sign on the session pool, check each signature with the CA
 * public key, record the certificates (one transaction). Only the signing
 * step holds a token session. */
#include "audit.h"
#include "ca.h"
#include "errors.h"
#include "failpoint.h"
#include "ledger.h"
#include "log.h"
#include "msg.h"
#include "profile.h"
#include "signer.h"
#include "signpool.h"
#include "token.h"
#include "uuid.h"
#include "x509util.h"

#include <grpc/status.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct item {
	const struct issue_in *in;
	struct issue_out *out;
	X509_PUBKEY *spki; /* the CSR's key */
	ASN1_INTEGER *serial;
	X509 *x;
	int ok;                  /* still on its way to being issued */
	struct ledger_cert row;
};

struct batch {
	struct item *items;
	size_t n;
	struct ca_gen *g;
	const EVP_MD *md;
	int64_t deadline_ms; /* the call's, for every item */
};

static void item_fail(struct item *it, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void item_fail(struct item *it, int code, const char *fmt, ...)
{
	va_list ap;

	it->ok = 0;
	it->out->code = code;
	va_start(ap, fmt);
	msg_vset(&it->out->message, fmt, ap);
	va_end(ap);
}

/* Everything before the token: CSR checks and the unsigned certificate. */
static void prepare_item(struct item *it, X509 *ca, const char *requester, unsigned days,
			 size_t max_csr, int64_t now)
{
	struct sftca_msg why;
	char hex[PROFILE_SERIAL_HEX];
	int r;

	if (!uuid_is_canonical(it->in->peer_uuid)) {
		item_fail(it, GRPC_STATUS_INVALID_ARGUMENT,
			  "peer UUID '%.60s' is not a canonical lowercase UUID", it->in->peer_uuid);
		return;
	}
	if ((r = profile_check_csr(it->in->csr, it->in->csr_len, max_csr, &it->spki, &why)) != 0) {
		item_fail(it, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg_text(&why, r));
		return;
	}
	if (profile_random_serial(&it->serial, hex) != 0 ||
	    profile_leaf(ca, it->in->peer_uuid, it->spki, it->serial, now,
			 days, &it->x) != 0) {
		item_fail(it, GRPC_STATUS_INTERNAL, "certificate could not be built");
		return;
	}
	it->ok = 1;
	snprintf(it->row.serial, sizeof(it->row.serial), "%s", hex);
	snprintf(it->row.peer_uuid, sizeof(it->row.peer_uuid), "%s", it->in->peer_uuid);
	x509_name_text(X509_get_subject_name(it->x), it->row.subject, sizeof(it->row.subject));
	it->row.not_before = x509_not_before(it->x);
	it->row.not_after = x509_not_after(it->x);
	profile_spki_sha256(it->spki, it->row.spki_sha256);
	snprintf(it->row.requester, sizeof(it->row.requester), "%s", requester);
	it->row.requested_at = now;
}

struct refuse_ctx {
	struct item *items;
	const struct caller *who;
};

static int refuse_compromised(void *arg, size_t i, const struct ledger_cert *row)
{
	struct refuse_ctx *c = arg;
	struct item *it = &c->items[i];

	log_warn("refused a certificate for peer %s to %s (%s): its key was revoked for "
		 "keyCompromise (SPKI SHA-256 %s, serial %s, CA %s)",
		 it->row.peer_uuid, c->who->identity, c->who->peer, row->spki_sha256, row->serial,
		 row->ca_id);
	item_fail(it, GRPC_STATUS_FAILED_PRECONDITION,
		  "key revoked for keyCompromise: SPKI SHA-256 %s (serial %s, CA %s); make a new key",
		  row->spki_sha256, row->serial, row->ca_id);
	return 0;
}

/* A key once revoked for keyCompromise is never certified again, under any
 * CA: the client cannot be trusted to re-key, so the signer refuses. */
static int refuse_compromised_keys(struct signer *s, const struct caller *who,
				   struct item *items, size_t n)
{
	const char **spki = calloc(n ? n : 1, sizeof(*spki));
	struct refuse_ctx c = { items, who };
	int r;

	if (spki == NULL)
		return SFTCA_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		spki[i] = items[i].ok ? items[i].row.spki_sha256 : NULL;
	r = ledger_compromised_keys(s->ledger, spki, n, refuse_compromised, &c);
	free(spki);
	return r;
}

/* On a pool thread, holding a token session only inside X509_sign. Each
 * item has its own token call: items sign in parallel, each keeps its error. */
static void sign_item(void *ctx, size_t i)
{
	struct batch *b = ctx;
	struct item *it = &b->items[i];
	struct token_call call = { .deadline_ms = b->deadline_ms };
	EVP_PKEY *key;
	int err, signed_ok;

	if (!it->ok)
		return;
	if ((key = ca_gen_signer(b->g, &call)) == NULL) {
		item_fail(it, GRPC_STATUS_INTERNAL, "the token refused to sign");
		return;
	}
	signed_ok = X509_sign(it->x, key, b->md) > 0;
	EVP_PKEY_free(key);
	if (signed_ok)
		return;
	ERR_clear_error();
	err = call.error;
	if (err == SFTCA_ERR_TOKEN_LOST)
		item_fail(it, GRPC_STATUS_UNAVAILABLE, "token unavailable; retry later");
	else if (err == SFTCA_ERR_TIMEOUT)
		item_fail(it, GRPC_STATUS_DEADLINE_EXCEEDED, "no token session before the deadline");
	else
		item_fail(it, GRPC_STATUS_INTERNAL, "the token refused to sign");
}

/* Fault guard: a signature the CA public key does not verify is never released. */
static void finish_item(struct item *it, EVP_PKEY *ca_pub, int64_t now)
{
	unsigned char *der = NULL;
	int len;

	if (!it->ok)
		return;
	if (X509_verify(it->x, ca_pub) != 1) {
		ERR_clear_error();
		log_error("signature on serial %s does not verify with the CA key: withheld",
			  it->row.serial);
		item_fail(it, GRPC_STATUS_INTERNAL, "signature check failed; certificate withheld");
		return;
	}
	if ((len = i2d_X509(it->x, &der)) <= 0 || x509_sha256_hex(it->x, it->row.cert_sha256) != 0) {
		OPENSSL_free(der);
		item_fail(it, GRPC_STATUS_INTERNAL, "certificate could not be encoded");
		return;
	}
	it->out->der = der;
	it->out->der_len = (size_t)len;
	it->row.cert_der = der;
	it->row.cert_len = (size_t)len;
	it->row.issued_at = now;
	snprintf(it->out->serial, sizeof(it->out->serial), "%s", it->row.serial);
}

/* New random serials for the items still ok: their serials' reservation
 * collided with a serial already on record (or another in the batch). */
static int reroll_serials(struct item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char hex[PROFILE_SERIAL_HEX];
		if (!items[i].ok)
			continue;
		ASN1_INTEGER_free(items[i].serial);
		items[i].serial = NULL;
		if (profile_random_serial(&items[i].serial, hex) != 0 ||
		    X509_set_serialNumber(items[i].x, items[i].serial) != 1)
			return SFTCA_ERR_CRYPTO;
		snprintf(items[i].row.serial, sizeof(items[i].row.serial), "%s", hex);
	}
	return 0;
}

/* A test makes the second item's serial the first one's: a collision the
 * ledger's unique constraint finds, as a real one would be. */
static void test_collide(struct item *items, size_t n)
{
	size_t a = n, b = n;

	for (size_t i = 0; i < n && b == n; i++)
		if (items[i].ok) {
			if (a == n)
				a = i;
			else
				b = i;
		}
	if (b == n || failpoint("issue.serial_collision") == 0)
		return;
	X509_set_serialNumber(items[b].x, items[a].serial);
	memcpy(items[b].row.serial, items[a].row.serial, sizeof(items[b].row.serial));
}

/* Reserve the serials of the items still ok; one transaction. */
static int reserve(struct signer *s, struct item *items, size_t n, const char *ca_id,
		   unsigned gen, size_t *nres)
{
	struct ledger_cert *rows = calloc(n ? n : 1, sizeof(*rows));
	size_t k = 0;
	int r;

	if (rows == NULL)
		return SFTCA_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!items[i].ok)
			continue;
		snprintf(items[i].row.ca_id, sizeof(items[i].row.ca_id), "%s", ca_id);
		items[i].row.generation = gen;
		rows[k++] = items[i].row;
	}
	r = k ? ledger_reserve(s->ledger, rows, k) : 0;
	free(rows);
	*nres = k;
	return r;
}

/* Record the outcome of every reserved row: issued or abandoned. */
static int record(struct signer *s, struct item *items, size_t n, const int *reserved)
{
	struct ledger_cert *rows = calloc(n ? n : 1, sizeof(*rows));
	size_t k = 0;
	int r;

	if (rows == NULL)
		return SFTCA_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!reserved[i])
			continue;
		rows[k] = items[i].row;
		if (!items[i].ok)
			rows[k].cert_der = NULL;
		k++;
	}
	r = k ? ledger_complete(s->ledger, rows, k) : 0;
	free(rows);
	return r;
}

static int audit_batch(struct signer *s, const struct caller *who, const char *ca_id,
		       unsigned gen, struct item *items, size_t n, const char *result,
		       const char *error)
{
	json_t *serials = json_array(), *refused = json_array();

	for (size_t i = 0; i < n; i++) {
		if (items[i].out->code == 0 && items[i].out->der)
			json_array_append_new(serials, json_string(items[i].row.serial));
		else
			json_array_append_new(refused,
					      json_pack("{s:o, s:i, s:o}", "peer",
							audit_text(items[i].in->peer_uuid
									   ? items[i].in->peer_uuid
									   : ""),
							"code", items[i].out->code, "message",
							audit_text(items[i].out->message.text)));
	}
	return audit_log(s->audit, "issue", who->identity, ca_id, result,
			 json_pack("{s:i, s:i, s:o, s:o, s:s?}", "generation", (int)gen, "items",
				   (int)n, "serials", serials, "refused", refused, "error", error));
}

/* Signed certificates that must not leave: each item fails with why. */
static void withhold(struct item *items, size_t n, struct issue_out *out, const char *why)
{
	for (size_t i = 0; i < n; i++) {
		if (out[i].der != NULL)
			item_fail(&items[i], GRPC_STATUS_UNAVAILABLE, "%s", why);
		OPENSSL_free(out[i].der);
		out[i].der = NULL;
		out[i].der_len = 0;
		out[i].serial[0] = '\0';
	}
}

/* The ledger failed before anything was signed: every item still on its
 * way is failed, and the batch too. */
static int unsigned_batch(struct item *items, size_t n, const char *what, int r,
			  struct sftca_msg *msg)
{
	for (size_t i = 0; i < n; i++)
		if (items[i].ok)
			item_fail(&items[i], GRPC_STATUS_UNAVAILABLE, "not signed: %s", what);
	return msg_fail(msg, SFTCA_ERR_UNAVAILABLE, "%s (%s): nothing was signed", what,
			sftca_strerror(r));
}

int issue_batch(struct signer *s, const struct caller *who, struct signer_call *call,
		const char *ca_id, unsigned days, const struct issue_in *in, size_t n,
		struct issue_out *out, unsigned *generation)
{
	struct sftca_msg *msg = &call->msg;
	struct item *items = calloc(n ? n : 1, sizeof(*items));
	int *reserved = calloc(n ? n : 1, sizeof(*reserved));
	struct ca_gen *g = NULL;
	struct batch b;
	size_t nres = 0, issued = 0;
	int audited = 0;

	int64_t now = time(NULL);
	int r;

	*generation = 0;
	msg_clear(msg);
	if (items == NULL || reserved == NULL) {
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		items[i].in = &in[i];
		items[i].out = &out[i];
		memset(&out[i], 0, sizeof(out[i]));
	}
	if ((r = ca_get_active(s->cas, ca_id, &g)) != 0) {
		if (r == SFTCA_ERR_NOT_FOUND) {
			msg_set(msg, "no CA %s", ca_id);
		} else if (r == SFTCA_ERR_LEDGER) {
			r = unsigned_batch(items, n, "the ledger cannot be read", r, msg);
		} else
			msg_set(msg, "CA %s cannot sign: its key is not usable", ca_id);
		goto out;
	}
	*generation = ca_gen_info(g)->generation;
	if (days == 0)
		days = s->cfg->leaf_days;
	if (x509_not_after(ca_gen_cert(g)) <= now) {
		msg_set(msg, "CA %s generation %u has expired: renew it first", ca_id, *generation);
		r = SFTCA_ERR_PRECONDITION;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		prepare_item(&items[i], ca_gen_cert(g), who->identity, days, s->cfg->max_csr, now);
	if ((r = refuse_compromised_keys(s, who, items, n)) != 0) {
		r = unsigned_batch(items, n, "ledger read failed", r, msg);
		goto out;
	}
	/* Write-ahead: nothing is signed unless its serial is on record. A
	 * serial already there (2^-128 odds, or another signer's) is drawn
	 * again: nothing was signed with it. */
	test_collide(items, n);
	for (int attempt = 1; (r = reserve(s, items, n, ca_id, *generation, &nres)) ==
				      SFTCA_ERR_EXISTS && attempt < 4;
	     attempt++) {
		log_warn("a serial of the batch is already on record: drawing new serials "
			 "(attempt %d of 4)",
			 attempt + 1);
		if ((r = reroll_serials(items, n)) != 0)
			break;
	}
	if (r != 0) {
		r = unsigned_batch(items, n, "ledger write failed", r, msg);
		goto out;
	}
	/* A test kills the signer here: serials on record, nothing signed. */
	if (failpoint("issue.reserved") != 0) {
		r = unsigned_batch(items, n, "test failpoint issue.reserved", SFTCA_ERR_IO, msg);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		reserved[i] = items[i].ok;
	b = (struct batch){ items, n, g, profile_digest(X509_get0_pubkey(ca_gen_cert(g))),
			    call->token.deadline_ms };
	signpool_run(s->pool, sign_item, &b, n);
	for (size_t i = 0; i < n; i++)
		finish_item(&items[i], X509_get0_pubkey(ca_gen_cert(g)), now);
	/* The audit record is on disk before anything is released: a batch the
	 * audit log cannot hold releases nothing, and its rows are abandoned. */
	if (audit_batch(s, who, ca_id, *generation, items, n, "ok", NULL) != 0) {
		withhold(items, n, out, "signed but not audited: withheld");
		if (record(s, items, n, reserved) != 0)
			log_error("ledger: the rows of a withheld batch stay pending until the "
				  "next start");
		msg_set(msg, "audit log write failed: no certificate was released");
		r = SFTCA_ERR_UNAVAILABLE;
		goto out;
	}
	audited = 1;
	if ((r = record(s, items, n, reserved)) != 0) {
		/* Signed but not on record: nothing is released; the rows stay
		 * pending and become abandoned at the next start. */
		withhold(items, n, out, "signed but not recorded: withheld");
		audited = 0;
		msg_set(msg, "ledger write failed (%s) after signing: no certificate was released",
			sftca_strerror(r));
		r = SFTCA_ERR_UNAVAILABLE;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		issued += out[i].der != NULL;
	log_info("issued %zu of %zu for CA %s generation %u to %s", issued, n, ca_id, *generation,
		 who->identity);
	r = 0;
out:
	if (items && n && !audited)
		audit_batch(s, who, ca_id, *generation, items, n, "error", msg->text);
	for (size_t i = 0; items && i < n; i++) {
		X509_PUBKEY_free(items[i].spki);
		ASN1_INTEGER_free(items[i].serial);
		X509_free(items[i].x);
	}
	free(items);
	free(reserved);
	ca_gen_put(g);
	return r;
}

void issue_out_clear(struct issue_out *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		OPENSSL_free(out[i].der);
		out[i].der = NULL;
	}
}
