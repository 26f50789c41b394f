/* IssueBatch, ListIssued and the health check. */
#include "handlers.h"

#include "arena.h"
#include "audit.h"
#include "ca.h"
#include "errors.h"
#include "ledger.h"
#include "log.h"
#include "ratelimit.h"
#include "token.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A batch refused as a whole: audited with the caller's identity (the
 * server logs every failed call). */
static int refuse_batch(struct signer *s, const struct caller *who, const char *ca_id, int rc,
			const char *why)
{
	audit_log(s->audit, "refused", who->identity, ca_id, "refused",
		  json_pack("{s:s, s:o, s:o}", "method", "IssueBatch", "peer", audit_text(who->peer),
			    "reason", audit_text(why)));
	return rc;
}

/* Largest reply item a CSR of csr_len bytes can produce. The certificate
 * copies the CSR's key (no larger than the CSR) and carries a subject, a
 * fixed set of extensions and the CA's name and signature: 2 KiB covers
 * those for RSA-4096 CAs with long names, 1 KiB the item's own fields. */
#define REPLY_ITEM_FIXED 3072u

/* Refuse before signing a batch whose reply may not fit in
 * max_message_bytes: certificates signed but never delivered would be on
 * record yet lost to the caller. */
static int reply_fits(const struct signer *s, const Sftca__V1__IssueBatchRequest *q,
		      size_t bundle_len, struct sftca_msg *msg)
{
	size_t room = s->cfg->max_message, need = bundle_len + 1024, fit = 0;

	for (size_t i = 0; i < q->n_items; i++) {
		size_t item = q->items[i]->csr_der.len + REPLY_ITEM_FIXED;
		need += item;
		if (need <= room)
			fit = i + 1;
	}
	if (need <= room)
		return 1;
	msg_set(msg,
		"the reply to %zu items could reach %zu bytes, more than max_message_bytes (%zu); "
		"send at most %zu items per call",
		q->n_items, need, room, fit);
	return 0;
}

static void openssl_free_cb(void *p)
{
	OPENSSL_free(p);
}

int rpc_issue_batch(struct signer *s, const struct caller *who, const ProtobufCMessage *req,
		    struct arena *a, ProtobufCMessage **resp, struct signer_call *call)
{
	const Sftca__V1__IssueBatchRequest *q = (const void *)req;
	Sftca__V1__IssueBatchResponse *r = arena_alloc(a, sizeof(*r));
	struct issue_in *in = NULL;
	struct issue_out *out = NULL;
	char *bundle = NULL;
	unsigned gen = 0;
	int rc;

	if (r == NULL)
		return SFTCA_ERR_NOMEM;
	sftca__v1__issue_batch_response__init(r);
	if ((rc = handlers_check_ca_id(q->ca_id, &call->msg)) != 0)
		return refuse_batch(s, who, NULL, rc, call->msg.text);
	if (!handlers_ca_allowed(who, q->ca_id)) {
		/* PERMISSION_DENIED: the server logs and audits it. */
		msg_set(&call->msg, "%s may not issue for CA %s", who->identity, q->ca_id);
		return SFTCA_ERR_DENIED;
	}
	if (q->n_items == 0) {
		msg_set(&call->msg, "the batch is empty");
		return refuse_batch(s, who, q->ca_id, SFTCA_ERR_INVALID, call->msg.text);
	}
	if (q->n_items > s->cfg->max_batch) {
		msg_set(&call->msg, "batch of %zu items; at most %u allowed (max_batch)", q->n_items,
			s->cfg->max_batch);
		return refuse_batch(s, who, q->ca_id, SFTCA_ERR_INVALID, call->msg.text);
	}
	if (q->days > 36500) {
		msg_set(&call->msg, "days %u out of range (1 to 36500)", q->days);
		return refuse_batch(s, who, q->ca_id, SFTCA_ERR_INVALID, call->msg.text);
	}
	if (!ratelimit_take(s->issue_rl, who->identity)) {
		msg_set(&call->msg, "%s is over its IssueBatch rate (%.2f/s); slow down",
			who->identity, s->cfg->issue_rate);
		return refuse_batch(s, who, q->ca_id, SFTCA_ERR_LIMIT, call->msg.text);
	}
	if (token_state(s->token, NULL, 0) != TOKEN_STATE_READY) {
		msg_set(&call->msg, "token unavailable; retry later");
		return SFTCA_ERR_TOKEN_LOST;
	}
	if (ca_bundle_pem(s->cas, q->ca_id, &bundle) == 0) {
		arena_adopt(a, bundle, free);
		r->bundle_pem = bundle;
	}
	if (!reply_fits(s, q, bundle ? strlen(bundle) : 0, &call->msg))
		return refuse_batch(s, who, q->ca_id, SFTCA_ERR_INVALID, call->msg.text);
	in = arena_alloc(a, q->n_items * sizeof(*in));
	out = arena_alloc(a, q->n_items * sizeof(*out));
	r->results = arena_alloc(a, q->n_items * sizeof(*r->results));
	if (!in || !out || !r->results)
		return SFTCA_ERR_NOMEM;
	for (size_t i = 0; i < q->n_items; i++) {
		in[i].peer_uuid = q->items[i]->peer_uuid;
		in[i].csr = q->items[i]->csr_der.data;
		in[i].csr_len = q->items[i]->csr_der.len;
	}
	rc = issue_batch(s, who, call, q->ca_id, q->days, in, q->n_items, out, &gen);
	/* The DER buffers belong to the arena from here, whatever happens next. */
	for (size_t i = 0; i < q->n_items; i++)
		if (out[i].der)
			arena_adopt(a, out[i].der, openssl_free_cb);
	if (rc != 0)
		return rc;
	r->generation = gen;
	for (size_t i = 0; i < q->n_items; i++) {
		Sftca__V1__IssueResult *res = arena_alloc(a, sizeof(*res));
		if (res == NULL)
			return SFTCA_ERR_NOMEM;
		sftca__v1__issue_result__init(res);
		res->code = out[i].code;
		res->message = arena_strdup(a, out[i].message.text);
		res->serial = arena_strdup(a, out[i].serial);
		res->cert_der.data = out[i].der;
		res->cert_der.len = out[i].der_len;
		if (!res->message || !res->serial)
			return SFTCA_ERR_NOMEM;
		r->results[r->n_results++] = res;
	}
	*resp = &r->base;
	return 0;
}

struct list_acc {
	struct arena *a;
	Sftca__V1__ListIssuedResponse *r;
	int with_der;
};

static int list_row(void *arg, const struct ledger_cert *c)
{
	struct list_acc *acc = arg;
	Sftca__V1__LedgerRow *row = arena_alloc(acc->a, sizeof(*row));

	if (row == NULL)
		return SFTCA_ERR_NOMEM;
	sftca__v1__ledger_row__init(row);
	row->serial = arena_strdup(acc->a, c->serial);
	row->ca_id = arena_strdup(acc->a, c->ca_id);
	row->generation = c->generation;
	row->peer_uuid = arena_strdup(acc->a, c->peer_uuid);
	row->subject = arena_strdup(acc->a, c->subject);
	row->not_before = c->not_before;
	row->not_after = c->not_after;
	row->cert_sha256 = arena_strdup(acc->a, c->cert_sha256);
	row->spki_sha256 = arena_strdup(acc->a, c->spki_sha256);
	row->requester = arena_strdup(acc->a, c->requester);
	row->requested_at = c->requested_at;
	row->issued_at = c->issued_at;
	row->state = arena_strdup(acc->a, cert_state_name(c->state));
	row->revoked_at = c->revoked_at;
	row->revocation_reason = arena_strdup(acc->a, c->revocation_reason);
	if (acc->with_der && c->cert_der && c->cert_len) {
		unsigned char *der = arena_alloc(acc->a, c->cert_len);
		if (der == NULL)
			return SFTCA_ERR_NOMEM;
		memcpy(der, c->cert_der, c->cert_len);
		row->cert_der.data = der;
		row->cert_der.len = c->cert_len;
	}
	if (!row->serial || !row->ca_id || !row->peer_uuid || !row->subject || !row->state ||
	    !row->cert_sha256 || !row->spki_sha256 || !row->requester || !row->revocation_reason)
		return SFTCA_ERR_NOMEM;
	acc->r->rows[acc->r->n_rows++] = row;
	return 0;
}

int rpc_list_issued(struct signer *s, const struct caller *who, const ProtobufCMessage *req,
		    struct arena *a, ProtobufCMessage **resp, struct signer_call *call)
{
	const Sftca__V1__ListIssuedRequest *q = (const void *)req;
	Sftca__V1__ListIssuedResponse *r = arena_alloc(a, sizeof(*r));
	struct ledger_filter f = { 0 };
	struct list_acc acc = { a, r, q->include_der };
	char token[32];
	unsigned count = 0;
	int64_t last = 0;
	int rc;

	if (r == NULL)
		return SFTCA_ERR_NOMEM;
	sftca__v1__list_issued_response__init(r);
	if (q->ca_id[0] && (rc = handlers_check_ca_id(q->ca_id, &call->msg)) != 0)
		return rc;
	if (q->state[0] && (f.state = cert_state_parse(q->state)) == CERT_STATE_NONE) {
		msg_set(&call->msg, "state '%.40s' unknown (pending, issued, revoked, abandoned)",
			q->state);
		return SFTCA_ERR_INVALID;
	}
	if (q->page_token[0]) {
		char *end;
		errno = 0;
		f.after_rowid = strtoll(q->page_token, &end, 10);
		if (*end != '\0' || errno != 0 || f.after_rowid < 0) {
			msg_set(&call->msg, "page_token is not one this signer gave out");
			return SFTCA_ERR_INVALID;
		}
	}
	if (q->ca_id[0] && !handlers_ca_allowed(who, q->ca_id)) {
		msg_set(&call->msg, "%s may not see CA %s", who->identity, q->ca_id);
		return SFTCA_ERR_DENIED;
	}
	f.ca_id = q->ca_id;
	f.ca_scope = handlers_ca_scope(who, a);
	f.peer_uuid = q->peer_uuid;
	f.limit = q->page_size == 0 ? 500 : q->page_size > 1000 ? 1000 : q->page_size;
	f.with_der = q->include_der;
	if ((r->rows = arena_alloc(a, f.limit * sizeof(*r->rows))) == NULL)
		return SFTCA_ERR_NOMEM;
	if ((rc = ledger_list(s->ledger, &f, list_row, &acc, &last, &count)) != 0) {
		msg_set(&call->msg, "ledger read failed");
		return rc;
	}
	if (count == f.limit) {
		snprintf(token, sizeof(token), "%lld", (long long)last);
		r->next_page_token = arena_strdup(a, token);
	}
	*resp = &r->base;
	return 0;
}

int rpc_health_check(struct signer *s, const struct caller *who, const ProtobufCMessage *req,
		     struct arena *a, ProtobufCMessage **resp, struct signer_call *call)
{
	const Grpc__Health__V1__HealthCheckRequest *q = (const void *)req;
	Grpc__Health__V1__HealthCheckResponse *r = arena_alloc(a, sizeof(*r));

	(void)who;
	if (r == NULL)
		return SFTCA_ERR_NOMEM;
	if (q->service[0] && strcmp(q->service, "sftca.v1.Signer") != 0) {
		msg_set(&call->msg, "unknown service '%.60s'", q->service);
		return SFTCA_ERR_NOT_FOUND;
	}
	grpc__health__v1__health_check_response__init(r);
	/* Serving means able to sign: the token is logged in. */
	r->status = token_state(s->token, NULL, 0) == TOKEN_STATE_READY
			    ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
			    : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	*resp = &r->base;
	return 0;
}
