/* Status and the CA lifecycle RPCs. Every CA change and revocation is one
 * audit line carrying the caller's identity. */
#include "handlers.h"

#include "arena.h"
#include "audit.h"
#include "ca.h"
#include "errors.h"
#include "expiry.h"
#include "log.h"
#include "token.h"
#include "uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const struct server_method signer_methods[] = {
	{ "/sftca.v1.Signer/GetStatus", &sftca__v1__get_status_request__descriptor, ROLE_AUDITOR,
	  rpc_get_status },
	{ "/sftca.v1.Signer/CreateCA", &sftca__v1__create_carequest__descriptor, ROLE_ADMIN,
	  rpc_create_ca },
	{ "/sftca.v1.Signer/RenewCA", &sftca__v1__renew_carequest__descriptor, ROLE_ADMIN,
	  rpc_renew_ca },
	{ "/sftca.v1.Signer/RotateCA", &sftca__v1__rotate_carequest__descriptor, ROLE_ADMIN,
	  rpc_rotate_ca },
	{ "/sftca.v1.Signer/FinalizeCA", &sftca__v1__finalize_carequest__descriptor, ROLE_ADMIN,
	  rpc_finalize_ca },
	{ "/sftca.v1.Signer/GetCA", &sftca__v1__get_carequest__descriptor, ROLE_AUDITOR, rpc_get_ca },
	{ "/sftca.v1.Signer/IssueBatch", &sftca__v1__issue_batch_request__descriptor, ROLE_ISSUER,
	  rpc_issue_batch },
	{ "/sftca.v1.Signer/Revoke", &sftca__v1__revoke_request__descriptor, ROLE_ADMIN, rpc_revoke },
	{ "/sftca.v1.Signer/GetCRL", &sftca__v1__get_crlrequest__descriptor, ROLE_AUDITOR,
	  rpc_get_crl },
	{ "/sftca.v1.Signer/ListIssued", &sftca__v1__list_issued_request__descriptor, ROLE_AUDITOR,
	  rpc_list_issued },
	{ "/sftca.v1.Signer/SetCustody", &sftca__v1__set_custody_request__descriptor, ROLE_ADMIN,
	  rpc_set_custody },
	{ "/grpc.health.v1.Health/Check", &grpc__health__v1__health_check_request__descriptor,
	  ROLE_NONE, rpc_health_check },
};
const size_t signer_nmethods = sizeof(signer_methods) / sizeof(signer_methods[0]);

int handlers_check_ca_id(const char *ca_id, struct sftca_msg *msg)
{
	if (!uuid_is_canonical(ca_id)) {
		msg_set(msg, "ca_id '%.60s' is not a canonical lowercase UUID", ca_id);
		return SFTCA_ERR_INVALID;
	}
	return 0;
}

int handlers_ca_allowed(const struct caller *who, const char *ca_id)
{
	if (who->authz == NULL || who->authz->role != ROLE_ISSUER || who->authz->ncas == 0)
		return 1;
	for (size_t i = 0; i < who->authz->ncas; i++)
		if (strcmp(who->authz->cas[i], ca_id) == 0)
			return 1;
	return 0;
}

const char *handlers_ca_scope(const struct caller *who, struct arena *a)
{
	size_t len = 2;
	char *scope, *p;

	if (who->authz == NULL || who->authz->role != ROLE_ISSUER || who->authz->ncas == 0)
		return NULL;
	for (size_t i = 0; i < who->authz->ncas; i++)
		len += strlen(who->authz->cas[i]) + 1;
	/* Out of memory: an empty scope (",") shows nothing rather than everything. */
	if ((scope = p = arena_alloc(a, len)) == NULL)
		return ",";
	*p++ = ',';
	for (size_t i = 0; i < who->authz->ncas; i++) {
		size_t n = strlen(who->authz->cas[i]);
		memcpy(p, who->authz->cas[i], n);
		p += n;
		*p++ = ',';
	}
	*p = '\0';
	return scope;
}

static Sftca__V1__GenerationState gen_state(enum gen_state s)
{
	switch (s) {
	case GEN_ACTIVE:
		return SFTCA__V1__GENERATION_STATE__GENERATION_ACTIVE;
	case GEN_RETIRING:
		return SFTCA__V1__GENERATION_STATE__GENERATION_RETIRING;
	case GEN_RETIRED:
		return SFTCA__V1__GENERATION_STATE__GENERATION_RETIRED;
	default:
		return SFTCA__V1__GENERATION_STATE__GENERATION_STATE_UNSPECIFIED;
	}
}

struct info_acc {
	struct arena *a;
	Sftca__V1__CAInfo **v;
	size_t n, cap;
	int64_t now;
	const struct caller *who; /* NULL: every CA; else those it may see */
};

static Sftca__V1__Custody wire_custody(enum ca_custody c)
{
	return c == CUSTODY_SHARED      ? SFTCA__V1__CUSTODY__CUSTODY_SHARED
	       : c == CUSTODY_EXCLUSIVE ? SFTCA__V1__CUSTODY__CUSTODY_EXCLUSIVE
					: SFTCA__V1__CUSTODY__CUSTODY_UNSPECIFIED;
}

static int info_visit(void *arg, const char *ca_id, const char *subject,
		      const struct ledger_gen *const *gens, size_t n, unsigned active,
		      enum ca_custody custody)
{
	struct info_acc *acc = arg;
	Sftca__V1__CAInfo *ci;

	if (acc->who && !handlers_ca_allowed(acc->who, ca_id))
		return 0;
	if ((ci = arena_alloc(acc->a, sizeof(*ci))) == NULL || acc->n == acc->cap)
		return SFTCA_ERR_NOMEM;
	sftca__v1__cainfo__init(ci);
	ci->ca_id = arena_strdup(acc->a, ca_id);
	ci->subject = arena_strdup(acc->a, subject);
	ci->active_generation = active;
	ci->custody = wire_custody(custody);
	ci->generations = arena_alloc(acc->a, (n ? n : 1) * sizeof(*ci->generations));
	if (!ci->ca_id || !ci->subject || !ci->generations)
		return SFTCA_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		Sftca__V1__Generation *g = arena_alloc(acc->a, sizeof(*g));
		if (g == NULL)
			return SFTCA_ERR_NOMEM;
		sftca__v1__generation__init(g);
		g->generation = gens[i]->generation;
		g->state = gen_state(gens[i]->state);
		g->key_type = arena_strdup(acc->a, gens[i]->key_type);
		g->key_label = arena_strdup(acc->a, gens[i]->key_label);
		g->serial = arena_strdup(acc->a, gens[i]->serial);
		if (!g->key_type || !g->key_label || !g->serial)
			return SFTCA_ERR_NOMEM;
		g->x509_version = (uint32_t)gens[i]->x509_version;
		g->not_before = gens[i]->not_before;
		g->not_after = gens[i]->not_after;
		g->days_left = expiry_days(gens[i]->not_after, acc->now, NULL);
		g->created_at = gens[i]->created_at;
		g->imported = gens[i]->imported;
		ci->generations[ci->n_generations++] = g;
	}
	acc->v[acc->n++] = ci;
	return 0;
}

/* CAInfo of one CA (or NULL on failure). */
Sftca__V1__CAInfo *handlers_ca_info(struct signer *s, struct arena *a, const char *ca_id)
{
	Sftca__V1__CAInfo *one[1];
	struct info_acc acc = { a, one, 0, 1, time(NULL), NULL };

	if (ca_foreach(s->cas, ca_id, info_visit, &acc) != 0 || acc.n != 1)
		return NULL;
	return one[0];
}

static int count_visit(void *arg, const char *ca_id, const char *subject,
		       const struct ledger_gen *const *gens, size_t n, unsigned active,
		       enum ca_custody custody)
{
	(void)ca_id, (void)subject, (void)gens, (void)n, (void)active, (void)custody;
	(*(size_t *)arg)++;
	return 0;
}

int rpc_get_status(struct signer *s, const struct caller *who, const ProtobufCMessage *req,
		   struct arena *a, ProtobufCMessage **resp, struct signer_call *call)
{
	Sftca__V1__GetStatusResponse *r = arena_alloc(a, sizeof(*r));
	char msg[256];
	size_t count = 0;
	struct info_acc acc = { a, NULL, 0, 0, time(NULL), who };
	int rc;

	(void)req, (void)call;
	if (r == NULL)
		return SFTCA_ERR_NOMEM;
	sftca__v1__get_status_response__init(r);
	r->token_state = (Sftca__V1__TokenState)token_state(s->token, msg, sizeof(msg));
	r->token_label = arena_strdup(a, s->cfg->token_label);
	r->token_message = arena_strdup(a, msg);
	r->version = arena_strdup(a, SFTCA_VERSION);
	r->now = acc.now;
	r->identity = arena_strdup(a, who->identity);
	r->role = arena_strdup(a, role_name(who->role));
	/* Count first so the array can be sized; a CA created in between is
	 * simply left for the next call. */
	if ((rc = ca_foreach(s->cas, NULL, count_visit, &count)) != 0)
		return rc;
	acc.cap = count;
	if ((acc.v = arena_alloc(a, (count ? count : 1) * sizeof(*acc.v))) == NULL)
		return SFTCA_ERR_NOMEM;
	if ((rc = ca_foreach(s->cas, NULL, info_visit, &acc)) != 0 && rc != SFTCA_ERR_NOMEM)
		return rc;
	r->cas = acc.v;
	r->n_cas = acc.n;
	*resp = &r->base;
	return 0;
}

/* The reply every CA-changing call gives: the CA, the new generation, its
 * certificate and the bundle. */
static int change_reply(struct signer *s, struct arena *a, const char *ca_id, unsigned gen,
			ProtobufCMessage **resp)
{
	Sftca__V1__CAChangeResponse *r = arena_alloc(a, sizeof(*r));
	char *cert = NULL, *bundle = NULL;
	unsigned got;
	int rc;

	if (r == NULL)
		return SFTCA_ERR_NOMEM;
	sftca__v1__cachange_response__init(r);
	if ((rc = ca_cert_pem(s->cas, ca_id, gen, &got, &cert)) != 0 ||
	    (rc = ca_bundle_pem(s->cas, ca_id, &bundle)) != 0) {
		free(cert);
		return rc;
	}
	arena_adopt(a, cert, free);
	arena_adopt(a, bundle, free);
	r->generation = gen;
	r->cert_pem = cert;
	r->bundle_pem = bundle;
	r->ca = handlers_ca_info(s, a, ca_id);
	*resp = &r->base;
	return 0;
}

/* One audit line for a CA change, whatever its outcome. */
static void audit_change(struct signer *s, const struct caller *who, const char *event,
			 const char *ca_id, int rc, const struct ca_change *res)
{
	audit_log(s->audit, event, who->identity, ca_id,
		  rc == 0 ? "ok" : (rc == SFTCA_ERR_PRECONDITION || rc == SFTCA_ERR_EXISTS ||
				    rc == SFTCA_ERR_INVALID || rc == SFTCA_ERR_NOT_FOUND)
				   ? "refused"
				   : "error",
		  json_pack("{s:i, s:o}", "generation", (int)res->generation, "message",
			    audit_text(rc == 0 ? "" : msg_text(&res->message, rc))));
	/* A refusal is logged by the server with the message the caller gets. */
	if (rc == 0)
		log_info("%s of CA %s by %s: generation %u", event, ca_id, who->identity,
			 res->generation);
}

static int change_done(struct signer *s, const struct caller *who, const char *event,
		       const char *ca_id, int rc, struct ca_change *res, struct arena *a,
		       ProtobufCMessage **resp, struct signer_call *call)
{
	audit_change(s, who, event, ca_id, rc, res);
	if (rc != 0) {
		msg_set(&call->msg, "%s", msg_text(&res->message, rc));
		return rc;
	}
	return change_reply(s, a, ca_id, res->generation, resp);
}

int rpc_create_ca(struct signer *s, const struct caller *who, const ProtobufCMessage *req,
		  struct arena *a, ProtobufCMessage **resp, struct signer_call *call)
{
	const Sftca__V1__CreateCARequest *q = (const void *)req;
	struct ca_change res;
	int rc = ca_create(s->cas, q->ca_id, q->key_type, q->days, who->identity, &call->token,
			   &res);

	return change_done(s, who, "ca.create", q->ca_id, rc, &res, a, resp, call);
}

int rpc_renew_ca(struct signer *s, const struct caller *who, const ProtobufCMessage *req,
		 struct arena *a, ProtobufCMessage **resp, struct signer_call *call)
{
	const Sftca__V1__RenewCARequest *q = (const void *)req;
	struct ca_change res;
	int rc = ca_renew(s->cas, q->ca_id, q->days, who->identity, &call->token, &res);

	return change_done(s, who, "ca.renew", q->ca_id, rc, &res, a, resp, call);
}

int rpc_rotate_ca(struct signer *s, const struct caller *who, const ProtobufCMessage *req,
		  struct arena *a, ProtobufCMessage **resp, struct signer_call *call)
{
	const Sftca__V1__RotateCARequest *q = (const void *)req;
	struct ca_change res;
	int rc = ca_rotate(s->cas, q->ca_id, q->key_type, q->days, q->force, who->identity,
			   &call->token, &res);

	return change_done(s, who, "ca.rotate", q->ca_id, rc, &res, a, resp, call);
}

int rpc_finalize_ca(struct signer *s, const struct caller *who, const ProtobufCMessage *req,
		    struct arena *a, ProtobufCMessage **resp, struct signer_call *call)
{
	const Sftca__V1__FinalizeCARequest *q = (const void *)req;
	Sftca__V1__FinalizeCAResponse *r;
	struct ca_change res;
	char *bundle = NULL;
	int rc = ca_finalize(s->cas, q->ca_id, q->force, who->identity, &res);

	audit_change(s, who, "ca.finalize", q->ca_id, rc, &res);
	if (rc != 0) {
		msg_set(&call->msg, "%s", msg_text(&res.message, rc));
		return rc;
	}
	if ((r = arena_alloc(a, sizeof(*r))) == NULL)
		return SFTCA_ERR_NOMEM;
	sftca__v1__finalize_caresponse__init(r);
	if ((rc = ca_bundle_pem(s->cas, q->ca_id, &bundle)) != 0)
		return rc;
	arena_adopt(a, bundle, free);
	r->bundle_pem = bundle;
	r->live_retiring_leaves = res.live_leaves;
	r->retired = res.retired;
	r->ca = handlers_ca_info(s, a, q->ca_id);
	*resp = &r->base;
	return 0;
}

int rpc_get_ca(struct signer *s, const struct caller *who, const ProtobufCMessage *req,
	       struct arena *a, ProtobufCMessage **resp, struct signer_call *call)
{
	const Sftca__V1__GetCARequest *q = (const void *)req;
	Sftca__V1__GetCAResponse *r = arena_alloc(a, sizeof(*r));
	char *cert = NULL, *bundle = NULL;
	unsigned gen = 0;
	int rc;

	(void)who;
	if (r == NULL)
		return SFTCA_ERR_NOMEM;
	if ((rc = handlers_check_ca_id(q->ca_id, &call->msg)) != 0)
		return rc;
	sftca__v1__get_caresponse__init(r);
	if ((rc = ca_cert_pem(s->cas, q->ca_id, q->generation, &gen, &cert)) != 0 ||
	    (rc = ca_bundle_pem(s->cas, q->ca_id, &bundle)) != 0) {
		free(cert);
		if (rc == SFTCA_ERR_NOT_FOUND)
			msg_set(&call->msg, "no CA %s%s", q->ca_id,
				q->generation ? " with that generation" : "");
		else
			msg_set(&call->msg, "CA %s cannot be read now: %s", q->ca_id,
				sftca_strerror(rc));
		return rc;
	}
	arena_adopt(a, cert, free);
	arena_adopt(a, bundle, free);
	r->ca_id = arena_strdup(a, q->ca_id);
	r->generation = gen;
	r->cert_pem = cert;
	r->bundle_pem = bundle;
	r->ca = handlers_ca_info(s, a, q->ca_id);
	*resp = &r->base;
	return 0;
}

/* SetCustody: every call is one audit line with the custody before and
 * after, whatever its outcome (a refusal by role is the server's). */
int rpc_set_custody(struct signer *s, const struct caller *who, const ProtobufCMessage *req,
		    struct arena *a, ProtobufCMessage **resp, struct signer_call *call)
{
	const Sftca__V1__SetCustodyRequest *q = (const void *)req;
	Sftca__V1__SetCustodyResponse *r;
	enum ca_custody want = q->custody == SFTCA__V1__CUSTODY__CUSTODY_SHARED ? CUSTODY_SHARED
			       : q->custody == SFTCA__V1__CUSTODY__CUSTODY_EXCLUSIVE
				       ? CUSTODY_EXCLUSIVE
				       : CUSTODY_NONE;
	enum ca_custody prev = CUSTODY_NONE;
	struct ca_change res;
	int rc;

	if ((rc = handlers_check_ca_id(q->ca_id, &call->msg)) != 0)
		return rc;
	rc = ca_set_custody(s->cas, q->ca_id, want, who->identity, &prev, &res);
	audit_log(s->audit, "ca.custody", who->identity, q->ca_id,
		  rc == 0 ? "ok"
		  : (rc == SFTCA_ERR_INVALID || rc == SFTCA_ERR_NOT_FOUND) ? "refused"
									: "error",
		  json_pack("{s:s, s:s, s:b, s:o}", "previous", custody_name(prev), "custody",
			    custody_name(want), "changed", rc == 0 && prev != want, "message",
			    audit_text(rc == 0 ? "" : msg_text(&res.message, rc))));
	if (rc != 0) {
		msg_set(&call->msg, "%s", msg_text(&res.message, rc));
		return rc;
	}
	if ((r = arena_alloc(a, sizeof(*r))) == NULL)
		return SFTCA_ERR_NOMEM;
	sftca__v1__set_custody_response__init(r);
	r->previous = wire_custody(prev);
	r->ca = handlers_ca_info(s, a, q->ca_id);
	*resp = &r->base;
	return 0;
}

struct revoke_audit {
	struct signer *s;
	const struct caller *who;
	const Sftca__V1__RevokeRequest *q;
	const char *serial;
	int failed;
};

/* The revocation's audit record is on disk before the ledger commits it:
 * a revocation the audit log cannot hold is not applied. */
static int revoke_audit_first(void *arg, unsigned gen)
{
	struct revoke_audit *ra = arg;
	int rc = audit_log(ra->s->audit, "revoke", ra->who->identity, ra->q->ca_id, "ok",
			   json_pack("{s:o, s:o, s:i}", "serial", audit_text(ra->serial), "reason",
				     audit_text(ra->q->reason[0] ? ra->q->reason : "unspecified"),
				     "generation", (int)gen));

	ra->failed = rc != 0;
	return rc;
}

int rpc_revoke(struct signer *s, const struct caller *who, const ProtobufCMessage *req,
	       struct arena *a, ProtobufCMessage **resp, struct signer_call *call)
{
	const Sftca__V1__RevokeRequest *q = (const void *)req;
	Sftca__V1__RevokeResponse *r = arena_alloc(a, sizeof(*r));
	char serial[80] = "";
	struct revoke_audit ra = { s, who, q, serial, 0 };
	unsigned gen = 0;
	int64_t at = 0;
	int rc;

	if (r == NULL)
		return SFTCA_ERR_NOMEM;
	if ((rc = handlers_check_ca_id(q->ca_id, &call->msg)) != 0)
		return rc;
	rc = ca_revoke(s->cas, q->ca_id, q->serial, q->reason, &gen, &at, serial, sizeof(serial),
		       revoke_audit_first, &ra);
	switch (rc) {
	case 0:
		break;
	case SFTCA_ERR_INVALID:
		msg_set(&call->msg,
			ca_reason_valid(q->reason)
				? "serial '%.80s' is not hexadecimal"
				: "reason '%.80s' unknown (unspecified, keyCompromise, cACompromise, "
				  "affiliationChanged, superseded, cessationOfOperation, "
				  "privilegeWithdrawn, aACompromise)",
			ca_reason_valid(q->reason) ? q->serial : q->reason);
		break;
	case SFTCA_ERR_NOT_FOUND:
		msg_set(&call->msg, "CA %s never issued serial %s", q->ca_id, serial);
		break;
	case SFTCA_ERR_PRECONDITION:
		msg_set(&call->msg, "serial %s is not in state issued (already revoked?)", serial);
		break;
	default:
		msg_set(&call->msg, ra.failed ? "audit log write failed: serial %s was not revoked"
						: "revocation failed: %s",
			ra.failed ? serial : sftca_strerror(rc));
		if (ra.failed)
			rc = SFTCA_ERR_UNAVAILABLE;
	}
	if (rc != 0) {
		audit_log(s->audit, "revoke", who->identity, q->ca_id,
			  rc == SFTCA_ERR_UNAVAILABLE || rc == SFTCA_ERR_LEDGER ? "error" : "refused",
			  json_pack("{s:o, s:o, s:o}", "serial",
				    audit_text(serial[0] ? serial : q->serial), "reason",
				    audit_text(q->reason[0] ? q->reason : "unspecified"), "message",
				    audit_text(call->msg.text)));
		return rc;
	}
	log_info("serial %s of CA %s revoked by %s (%s)", serial, q->ca_id, who->identity,
		 q->reason[0] ? q->reason : "unspecified");
	sftca__v1__revoke_response__init(r);
	r->serial = arena_strdup(a, serial);
	r->generation = gen;
	r->revoked_at = at;
	r->reason = arena_strdup(a, q->reason[0] ? q->reason : "unspecified");
	*resp = &r->base;
	return 0;
}

/* GetCRL: an admin signs a new CRL set (its --days); everyone else gets
 * the signer's own, re-signed only when stale. Every signing is audited. */
int rpc_get_crl(struct signer *s, const struct caller *who, const ProtobufCMessage *req,
		struct arena *a, ProtobufCMessage **resp, struct signer_call *call)
{
	const Sftca__V1__GetCRLRequest *q = (const void *)req;
	Sftca__V1__GetCRLResponse *r = arena_alloc(a, sizeof(*r));
	struct ca_crl_result crl;
	int admin = who->role == ROLE_ADMIN, rc;

	if (r == NULL)
		return SFTCA_ERR_NOMEM;
	if ((rc = handlers_check_ca_id(q->ca_id, &call->msg)) != 0)
		return rc;
	if (!handlers_ca_allowed(who, q->ca_id)) {
		msg_set(&call->msg, "%s may not see CA %s", who->identity, q->ca_id);
		return SFTCA_ERR_DENIED;
	}
	rc = admin ? ca_crl(s->cas, q->ca_id, q->days, &call->token, &crl)
	     : ca_crl_current(s->cas, q->ca_id, &call->token, &crl);
	if (rc != 0) {
		msg_set(&call->msg, "CRL for CA %s: %s", q->ca_id,
			rc == SFTCA_ERR_NOT_FOUND ? "no such CA"
			: rc == SFTCA_ERR_INVALID ? "days must be 1 to 3650"
						  : sftca_strerror(rc));
		if (rc != SFTCA_ERR_NOT_FOUND && rc != SFTCA_ERR_INVALID)
			audit_log(s->audit, "crl.sign", admin ? who->identity : "signer", q->ca_id,
				  "error",
				  json_pack("{s:o, s:o}", "for", audit_text(who->identity), "message",
					    audit_text(call->msg.text)));
		return rc;
	}
	arena_adopt(a, crl.pem, free);
	if (crl.signed_now) {
		audit_log(s->audit, "crl.sign", admin ? who->identity : "signer", q->ca_id, "ok",
			  json_pack("{s:o, s:I, s:I, s:i}", "for", audit_text(who->identity), "number",
				    (json_int_t)crl.number, "next_update", (json_int_t)crl.next_update,
				    "revoked", (int)crl.revoked));
		log_info("CRL %llu of CA %s signed for %s (%s, %u revoked, valid %lld days)",
			 (unsigned long long)crl.number, q->ca_id, who->identity,
			 admin ? "admin" : "the signer's own, the last one was stale",
			 crl.revoked, (long long)((crl.next_update - crl.this_update) / 86400));
	}
	sftca__v1__get_crlresponse__init(r);
	r->crl_pem = crl.pem;
	r->crl_number = crl.number;
	r->this_update = crl.this_update;
	r->next_update = crl.next_update;
	r->revoked = crl.revoked;
	*resp = &r->base;
	return 0;
}
