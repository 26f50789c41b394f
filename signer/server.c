#include "server.h"

#include "arena.h"
#include "audit.h"
#include "callauth.h"
#include "clientid.h"
#include "clock.h"
#include "errors.h"
#include "log.h"
#include "msg.h"
#include "rpc.h"
#include "tlsfiles.h"
#include "wirecheck.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ACCEPT_SLOTS 32  /* request_call()s kept outstanding */
/* gRPC memory beyond what max_calls calls of max_message bytes each way
 * need: connections, TLS and HTTP/2 buffers. */
#define QUOTA_BASE (64u << 20)

enum tag_kind { TAG_NEW, TAG_RECV, TAG_DONE, TAG_SHUTDOWN };

struct call;

struct tag {
	enum tag_kind kind;
	struct call *c;
};

struct call {
	struct server *srv;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
	grpc_byte_buffer *recv;
	grpc_byte_buffer *send;
	int cancelled;
	/* Set (release) just before the final batch, read (acquire) by the
	 * event thread before it frees the call: the hand-off then does not rely
	 * on gRPC's completion queue alone, which tools like TSan cannot see. */
	atomic_int handed;
	char peer[128];           /* taken at accept: gRPC forgets it once a call fails */
	char path[128];
	/* Decided when the call arrives, before its body is read. */
	struct caller who;
	int64_t deadline_ms;      /* CLOCK_MONOTONIC: the client's deadline */
	const struct server_method *m;
	grpc_status_code refused;  /* not OK: a worker refuses it without a body */
	struct sftca_msg why;
	int admitted;             /* holds one of max_calls slots */
	/* Waiting for its body (event thread only). */
	int64_t body_deadline_ms;
	int timed_out;
	struct call *wprev, *wnext;
	struct call *qnext;
	struct tag t_new, t_recv, t_done;
};

struct server {
	const struct server_opts *o;
	grpc_server *gs;
	grpc_completion_queue *cq;
	pthread_t event_thread;
	pthread_t *workers;
	unsigned nworkers;

	pthread_mutex_t mu;
	pthread_cond_t cv;        /* queue and shutdown progress */
	struct call *qhead, *qtail;
	unsigned in_flight;       /* accepted calls not yet done */
	unsigned admitted;        /* of those, calls holding a slot */
	struct id_slots *ids;     /* slots per identity; cfg->max_calls entries */
	pthread_mutex_t crl_mu;   /* crl: swapped on SIGHUP */
	struct client_crl *crl;
	struct call *waiting;     /* admitted, body not yet received (event thread) */
	int64_t next_sweep_ms;
	int stopping, shutdown_done, workers_stop;
	int started, event_started;
	struct tag t_shutdown;
};

struct id_slots {
	char identity[sizeof(((struct caller *)0)->identity)];
	unsigned n;
};

/* --- slots -------------------------------------------------------------------- */

/* Slots kept for admins: never all of them, so others are served at all. */
static unsigned admin_reserve(const struct signer_config *cfg)
{
	return cfg->admin_calls < cfg->max_calls ? cfg->admin_calls : cfg->max_calls - 1;
}

static struct id_slots *id_slots_find(struct server *srv, const char *identity, int add)
{
	struct id_slots *free_entry = NULL;

	for (unsigned i = 0; i < srv->o->cfg->max_calls; i++) {
		struct id_slots *e = &srv->ids[i];
		if (e->n > 0 && strcmp(e->identity, identity) == 0)
			return e;
		if (e->n == 0 && free_entry == NULL)
			free_entry = e;
	}
	if (add && free_entry)
		snprintf(free_entry->identity, sizeof(free_entry->identity), "%s", identity);
	return add ? free_entry : NULL;
}

/* Take a slot for c, or say in why why not: max_calls in all, the last
 * admin_reserved_calls of them for admins only, and at most
 * max_calls_per_client for one identity, so that one caller (or many
 * callers without the admin role) cannot starve the others. */
static int slot_take(struct server *srv, struct call *c, struct sftca_msg *why)
{
	const struct signer_config *cfg = srv->o->cfg;
	unsigned limit = cfg->max_calls;
	struct id_slots *e;
	int r = -1;

	if (c->who.role != ROLE_ADMIN)
		limit -= admin_reserve(cfg);
	pthread_mutex_lock(&srv->mu);
	e = id_slots_find(srv, c->who.identity, 0);
	if (srv->admitted >= limit) {
		msg_set(why, "%u other calls in flight (max_calls %u)%s", srv->admitted,
			 cfg->max_calls, limit < cfg->max_calls ? "; the rest are kept for admins" : "");
	} else if (e != NULL && e->n >= cfg->max_calls_per_client) {
		msg_set(why, "%u calls from %s in flight (max_calls_per_client %u)", e->n,
			 c->who.identity, cfg->max_calls_per_client);
	} else if ((e = id_slots_find(srv, c->who.identity, 1)) != NULL) {
		e->n++;
		srv->admitted++;
		c->admitted = 1;
		r = 0;
	}
	pthread_mutex_unlock(&srv->mu);
	return r;
}

/* Called with srv->mu held. */
static void slot_release(struct server *srv, struct call *c)
{
	struct id_slots *e;

	if (!c->admitted)
		return;
	if ((e = id_slots_find(srv, c->who.identity, 0)) != NULL)
		e->n--;
	srv->admitted--;
	c->admitted = 0;
}

/* --- calls ------------------------------------------------------------------ */

static int post_accept(struct server *srv)
{
	struct call *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return SFTCA_ERR_NOMEM;
	c->srv = srv;
	c->t_new = (struct tag){ TAG_NEW, c };
	c->t_recv = (struct tag){ TAG_RECV, c };
	c->t_done = (struct tag){ TAG_DONE, c };
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->md);
	if (grpc_server_request_call(srv->gs, &c->call, &c->details, &c->md, srv->cq, srv->cq,
				     &c->t_new) != GRPC_CALL_OK) {
		grpc_call_details_destroy(&c->details);
		grpc_metadata_array_destroy(&c->md);
		free(c);
		return SFTCA_ERR_RPC;
	}
	return 0;
}

static void call_free(struct call *c)
{
	if (c->call)
		grpc_call_unref(c->call);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->md);
	if (c->recv)
		grpc_byte_buffer_destroy(c->recv);
	if (c->send)
		grpc_byte_buffer_destroy(c->send);
	free(c);
}

/* Send the reply (c->send may be NULL) and status; completes as TAG_DONE. */
static void call_finish(struct call *c, grpc_status_code status, const char *msg)
{
	grpc_op ops[4];
	grpc_call *gc;
	grpc_slice details;
	grpc_call_error rc;
	size_t n = 0;

	/* This thread's, not c's: gRPC copies it inside start_batch ("not
	 * retained past the start_batch call"), and the event thread may free c
	 * as soon as the batch completes. */
	details = grpc_slice_from_copied_string(msg ? msg : "");
	memset(ops, 0, sizeof(ops));
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (c->send != NULL && status == GRPC_STATUS_OK) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->send;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = status;
	ops[n++].data.send_status_from_server.status_details = &details;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
	gc = c->call;
	atomic_store_explicit(&c->handed, 1, memory_order_release);
	rc = grpc_call_start_batch(gc, ops, n, &c->t_done, NULL);
	grpc_slice_unref(details);
	if (rc != GRPC_CALL_OK) {
		/* Cannot happen with a well-formed batch; account for it anyway. */
		log_error("cannot finish call (%d): %s", (int)rc, msg ? msg : "");
		pthread_mutex_lock(&c->srv->mu);
		slot_release(c->srv, c);
		c->srv->in_flight--;
		pthread_cond_broadcast(&c->srv->cv);
		pthread_mutex_unlock(&c->srv->mu);
		call_free(c);
	}
}

static int64_t call_deadline_ms(const struct call *c)
{
	gpr_timespec now = gpr_now(GPR_CLOCK_REALTIME);
	gpr_timespec dl = gpr_convert_clock_type(c->details.deadline, GPR_CLOCK_REALTIME);
	int64_t left;

	if (gpr_time_cmp(dl, gpr_inf_future(GPR_CLOCK_REALTIME)) == 0)
		left = 3600 * 1000; /* no deadline: cap waits at an hour */
	else
		left = gpr_time_to_millis(gpr_time_sub(dl, now));
	return clock_monotonic_ms() + left;
}

static void method_path(const struct call *c, char *buf, size_t len)
{
	snprintf(buf, len, "%.*s", (int)GRPC_SLICE_LENGTH(c->details.method),
		 (const char *)GRPC_SLICE_START_PTR(c->details.method));
}

/* text as "\xNN" where it is not printable ASCII, for logs. */
static void escape_text(const char *text, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t k = 0; k < len && o + 5 < outlen; k++) {
		unsigned char ch = (unsigned char)text[k];
		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
	}
	out[o] = '\0';
}

/* A TLS caller: its certificate's one CN, then the [authz] entry pinned
 * to the certificate, to its key, or naming the CN, in that order. A
 * certificate the CN rules or client_crl refuse leaves c->refused set. */
static void identify_tls(struct server *srv, struct call *c, grpc_auth_context *ctx)
{
	const struct signer_config *cfg = srv->o->cfg;
	struct caller *who = &c->who;
	grpc_auth_property_iterator it;
	const grpc_auth_property *p;
	struct client_cert cc;
	char shown[96] = "?";
	int revoked;

	it = grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_CN_PROPERTY_NAME);
	if ((p = grpc_auth_property_iterator_next(&it)) != NULL)
		escape_text(p->value, p->value_length, shown, sizeof(shown));
	snprintf(who->identity, sizeof(who->identity), "cn=%s", shown);
	it = grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_PEM_CERT_PROPERTY_NAME);
	if ((p = grpc_auth_property_iterator_next(&it)) == NULL) {
		msg_set(&c->why, "client certificate not available");
		c->refused = GRPC_STATUS_UNAUTHENTICATED;
		return;
	}
	if (client_cert_parse(p->value, p->value_length, &cc, &c->why) != 0) {
		c->refused = GRPC_STATUS_UNAUTHENTICATED;
		return;
	}
	snprintf(who->identity, sizeof(who->identity), "cn=%s", cc.cn);
	pthread_mutex_lock(&srv->crl_mu);
	revoked = client_crl_revoked(srv->crl, &cc);
	pthread_mutex_unlock(&srv->crl_mu);
	if (revoked) {
		msg_set(&c->why, "client certificate (serial %s) is revoked by client_crl", cc.serial);
		c->refused = GRPC_STATUS_UNAUTHENTICATED;
	} else if ((who->authz = config_authz_find_pin(cfg, CLIENTID_PIN_CERT, cc.cert_sha256)) ||
		   (who->authz = config_authz_find_pin(cfg, CLIENTID_PIN_SPKI, cc.spki_sha256)) ||
		   (who->authz = config_authz_find(cfg, cc.cn))) {
		who->role = who->authz->role;
	}
	client_cert_clear(&cc);
}

/* Establish who is calling: the verified client certificate on TLS, the
 * configured unix_role on the unix socket. */
static void identify(struct server *srv, struct call *c)
{
	const struct signer_config *cfg = srv->o->cfg;
	struct caller *who = &c->who;
	grpc_auth_context *ctx = grpc_call_auth_context(c->call);
	const char *transport = NULL;
	grpc_auth_property_iterator it;
	const grpc_auth_property *p;

	memset(who, 0, sizeof(*who));
	snprintf(who->peer, sizeof(who->peer), "%s", c->peer);
	c->deadline_ms = call_deadline_ms(c);
	if (ctx != NULL) {
		it = grpc_auth_context_find_properties_by_name(ctx,
							       GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
		if ((p = grpc_auth_property_iterator_next(&it)) != NULL)
			transport = p->value;
	}
	if (transport && strcmp(transport, GRPC_SSL_TRANSPORT_SECURITY_TYPE) == 0) {
		identify_tls(srv, c, ctx);
	} else if (strncmp(who->peer, "unix:", 5) == 0) {
		/* Access to the socket file is the authentication here. */
		snprintf(who->identity, sizeof(who->identity), "unix");
		who->role = cfg->unix_role;
	} else {
		snprintf(who->identity, sizeof(who->identity), "unauthenticated");
	}
	grpc_auth_context_release(ctx);
}

static void refuse(struct server *srv, const struct caller *who, const char *path,
		   const char *why)
{
	log_warn("refused %s for %s (%s): %s", path, who->identity, who->peer, why);
	/* Audited coalesced per identity and method: a flood of denials costs
	 * one record per interval, not two fsyncs each under the audit lock. */
	audit_denied(srv->o->signer->audit, who->identity, path, who->peer, why);
}

/* Only a request carrying a list (IssueBatch's items) needs megabytes;
 * the others are a few ids and numbers. */
static int carries_list(const ProtobufCMessageDescriptor *d)
{
	for (unsigned i = 0; i < d->n_fields; i++)
		if (d->fields[i].label == PROTOBUF_C_LABEL_REPEATED)
			return 1;
	return 0;
}

/* The request, checked before protobuf-c sees it: its size against the
 * method's cap, then a walk over the bytes (unknown fields, repeated
 * elements), so that what unpacking allocates stays proportional to what
 * the method needs, whoever asks. */
static int read_request(struct server *srv, struct call *c, const struct server_method *m,
			const char *path, ProtobufCMessage **req, struct sftca_msg *why)
{
	const struct signer_config *cfg = srv->o->cfg;
	int bulk = carries_list(m->request);
	size_t cap = bulk ? cfg->max_batch_request : cfg->max_request;
	size_t len = c->recv ? grpc_byte_buffer_length(c->recv) : 0;
	grpc_byte_buffer_reader reader;
	grpc_slice slice = grpc_empty_slice();
	int r;

	*req = NULL;
	if (len > cap) {
		return msg_fail(why, SFTCA_ERR_LIMIT, "request of %zu bytes; %s takes at most %zu (%s)",
				len, path, cap, bulk ? "max_batch_request_bytes" : "max_request_bytes");
	}
	if (c->recv != NULL) {
		if (!grpc_byte_buffer_reader_init(&reader, c->recv))
			return msg_fail(why, SFTCA_ERR_INVALID, "request is not a valid %s",
					m->request->name);
		slice = grpc_byte_buffer_reader_readall(&reader);
		grpc_byte_buffer_reader_destroy(&reader);
	}
	/* Twice max_batch: past max_batch the handler refuses with the count. */
	r = wire_check(GRPC_SLICE_START_PTR(slice), GRPC_SLICE_LENGTH(slice), m->request,
		       2 * (size_t)cfg->max_batch, why);
	if (r == 0 && rpc_unpack_bytes(GRPC_SLICE_START_PTR(slice), GRPC_SLICE_LENGTH(slice),
				       m->request, req) != 0)
		r = msg_fail(why, SFTCA_ERR_INVALID, "request is not a valid %s", m->request->name);
	grpc_slice_unref(slice);
	return r;
}

/* Run on a worker thread: authorize, decode, handle, encode. */
static void call_handle(struct server *srv, struct call *c)
{
	struct signer_call call = { .token = { .deadline_ms = c->deadline_ms } };
	const char *path = c->path;
	const struct server_method *m = c->m;
	ProtobufCMessage *req = NULL, *resp = NULL;
	struct arena *a = NULL;
	struct caller who = c->who;
	grpc_status_code st = GRPC_STATUS_OK;
	int r;

	if (c->refused != GRPC_STATUS_OK) {
		st = c->refused;
		msg_set(&call.msg, "%s", msg_text(&c->why, SFTCA_ERR_DENIED));
		refuse(srv, &who, path, call.msg.text);
		goto done;
	}
	if (clock_monotonic_ms() >= call.token.deadline_ms) {
		st = GRPC_STATUS_DEADLINE_EXCEEDED;
		msg_set(&call.msg, "deadline passed before the call was handled");
		log_warn("dropped %s for %s (%s): %s", path, who.identity, who.peer, call.msg.text);
		goto done;
	}
	if ((r = read_request(srv, c, m, path, &req, &c->why)) != 0) {
		st = rpc_status_from_err(r);
		msg_set(&call.msg, "%s", msg_text(&c->why, r));
		refuse(srv, &who, path, call.msg.text);
		goto done;
	}
	if ((a = arena_new()) == NULL) {
		st = GRPC_STATUS_RESOURCE_EXHAUSTED;
		goto done;
	}
	r = m->fn(srv->o->signer, &who, req, a, &resp, &call);
	if (r != 0) {
		st = rpc_status_from_err(r);
		if (!msg_isset(&call.msg))
			msg_set(&call.msg, "%s", sftca_strerror(r));
		/* Denials are audited here, other refusals by their handlers;
		 * every failed call is logged, once, with who asked. */
		if (st == GRPC_STATUS_PERMISSION_DENIED)
			refuse(srv, &who, path, call.msg.text);
		else
			log_warn("%s for %s (%s) answered %s: %s", path, who.identity, who.peer,
				 rpc_status_name(st), call.msg.text);
		goto done;
	}
	if (rpc_pack(resp, &c->send) != 0) {
		st = GRPC_STATUS_RESOURCE_EXHAUSTED;
	} else if (grpc_byte_buffer_length(c->send) > srv->o->cfg->max_message) {
		/* gRPC would drop it with only "Sent message larger than max"
		 * at the client; say why, here and there. */
		msg_set(&call.msg,
			"the reply (%zu bytes) is over max_message_bytes (%zu); ask for fewer items",
			grpc_byte_buffer_length(c->send), srv->o->cfg->max_message);
		log_warn("reply to %s for %s (%s) not sent: %s; what the call did (such as "
			 "certificates issued) stays done",
			 path, who.identity, who.peer, call.msg.text);
		st = GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
done:
	if (req)
		protobuf_c_message_free_unpacked(req, NULL);
	arena_free(a);
	call_finish(c, st, call.msg.text);
}

static void enqueue(struct server *srv, struct call *c)
{
	pthread_mutex_lock(&srv->mu);
	if (srv->qtail)
		srv->qtail->qnext = c;
	else
		srv->qhead = c;
	srv->qtail = c;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
}

static void *worker_main(void *arg)
{
	struct server *srv = arg;

	for (;;) {
		struct call *c;

		pthread_mutex_lock(&srv->mu);
		while (srv->qhead == NULL && !srv->workers_stop)
			pthread_cond_wait(&srv->cv, &srv->mu);
		if (srv->qhead == NULL) {
			pthread_mutex_unlock(&srv->mu);
			return NULL;
		}
		c = srv->qhead;
		srv->qhead = c->qnext;
		if (srv->qhead == NULL)
			srv->qtail = NULL;
		pthread_mutex_unlock(&srv->mu);
		call_handle(srv, c);
	}
}

/* --- the completion queue ----------------------------------------------------- */

static void waiting_add(struct server *srv, struct call *c)
{
	c->wprev = NULL;
	c->wnext = srv->waiting;
	if (srv->waiting)
		srv->waiting->wprev = c;
	srv->waiting = c;
}

static void waiting_remove(struct server *srv, struct call *c)
{
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else if (srv->waiting == c)
		srv->waiting = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	c->wprev = c->wnext = NULL;
}

/* Cancel admitted calls whose body has not arrived within request_timeout:
 * a stream that sends headers and nothing more would hold its slot for as
 * long as its own deadline says, or for ever. */
static void sweep_waiting(struct server *srv)
{
	int64_t now = clock_monotonic_ms();
	struct call *c, *next;

	if (now < srv->next_sweep_ms)
		return;
	srv->next_sweep_ms = now + 200;
	for (c = srv->waiting; c != NULL; c = next) {
		next = c->wnext;
		if (now < c->body_deadline_ms)
			continue;
		waiting_remove(srv, c);
		c->timed_out = 1;
		log_warn("refused %s for %s (%s): request not received within request_timeout (%u s)",
			 c->path, c->who.identity, c->who.peer, srv->o->cfg->request_timeout);
		grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED,
					     "request not received within request_timeout", NULL);
	}
}

static void on_new(struct server *srv, struct call *c, int ok)
{
	char *peer;
	grpc_op op;
	int admit;

	pthread_mutex_lock(&srv->mu);
	admit = ok && !srv->stopping;
	pthread_mutex_unlock(&srv->mu);
	if (!ok) { /* server shutting down: the slot is gone */
		call_free(c);
		return;
	}
	peer = grpc_call_get_peer(c->call);
	snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "?");
	gpr_free(peer);
	if (admit && post_accept(srv) != 0)
		log_error("cannot post a new accept slot");
	pthread_mutex_lock(&srv->mu);
	srv->in_flight++;
	pthread_mutex_unlock(&srv->mu);
	/* Who asks for what is known from the headers: decide before the body
	 * is read, so that a caller without the role holds nothing. */
	method_path(c, c->path, sizeof(c->path));
	identify(srv, c);
	if ((c->m = server_method_find(srv->o->methods, srv->o->nmethods, c->path)) == NULL) {
		msg_set(&c->why, "unknown method %s", c->path);
		log_warn("refused %s for %s (%s): %s", c->path, c->who.identity, c->who.peer,
			 c->why.text);
		call_finish(c, GRPC_STATUS_UNIMPLEMENTED, c->why.text);
		return;
	}
	if (c->refused != GRPC_STATUS_OK ||
	    !server_authorized(&c->who, c->m, c->path, &c->why)) {
		/* A worker logs and audits it: an audit write here would let a
		 * flood of refusals stall the event thread. */
		if (c->refused == GRPC_STATUS_OK)
			c->refused = GRPC_STATUS_PERMISSION_DENIED;
		enqueue(srv, c);
		return;
	}
	if (slot_take(srv, c, &c->why) != 0) {
		/* Logged, not audited: this runs on the event thread, and an
		 * audit write (fdatasync) per refused call would let a flood
		 * stall every other call. */
		log_warn("refused %s for %s (%s): %s", c->path, c->who.identity, c->who.peer,
			 c->why.text);
		call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "signer busy: too many calls in flight");
		return;
	}
	c->body_deadline_ms = clock_monotonic_ms() + 1000 * (int64_t)srv->o->cfg->request_timeout;
	waiting_add(srv, c);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->recv;
	if (grpc_call_start_batch(c->call, &op, 1, &c->t_recv, NULL) != GRPC_CALL_OK) {
		waiting_remove(srv, c);
		call_finish(c, GRPC_STATUS_INTERNAL, "cannot read the request");
	}
}

static void on_recv(struct server *srv, struct call *c, int ok)
{
	waiting_remove(srv, c);
	if (c->timed_out) {
		call_finish(c, GRPC_STATUS_DEADLINE_EXCEEDED,
			    "request not received within request_timeout");
		return;
	}
	if (!ok) {
		/* gRPC has already failed the call: too large, reset under the
		 * memory quota, or given up by the client. */
		log_warn("request for %s from %s (%s) not received: larger than max_message_bytes "
			 "(%zu), reset under memory pressure, or cancelled by the client",
			 c->path, c->who.identity, c->who.peer, srv->o->cfg->max_message);
		call_finish(c, GRPC_STATUS_CANCELLED, "request not received");
		return;
	}
	enqueue(srv, c);
}

static void *event_main(void *arg)
{
	struct server *srv = arg;

	for (;;) {
		grpc_event ev = grpc_completion_queue_next(
			srv->cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(250, GPR_TIMESPAN)),
			NULL);
		struct tag *t;

		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			return NULL;
		sweep_waiting(srv);
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		t = ev.tag;
		switch (t->kind) {
		case TAG_NEW:
			on_new(srv, t->c, ev.success);
			break;
		case TAG_RECV:
			on_recv(srv, t->c, ev.success);
			break;
		case TAG_DONE:
			(void)atomic_load_explicit(&t->c->handed, memory_order_acquire);
			pthread_mutex_lock(&srv->mu);
			slot_release(srv, t->c);
			pthread_mutex_unlock(&srv->mu);
			call_free(t->c);
			pthread_mutex_lock(&srv->mu);
			srv->in_flight--;
			pthread_cond_broadcast(&srv->cv);
			pthread_mutex_unlock(&srv->mu);
			break;
		case TAG_SHUTDOWN:
			pthread_mutex_lock(&srv->mu);
			srv->shutdown_done = 1;
			pthread_cond_broadcast(&srv->cv);
			pthread_mutex_unlock(&srv->mu);
			break;
		}
	}
}

/* --- listeners ---------------------------------------------------------------- */

static int add_listener(struct server *srv, const char *addr, grpc_server_credentials *tls)
{
	if (strncmp(addr, "unix:", 5) == 0) {
		const char *path = addr + 5;
		struct stat st;
		grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
		mode_t old = umask(0117); /* the socket is born 0660 */
		int port = grpc_server_add_http2_port(srv->gs, addr, creds);

		umask(old);
		grpc_server_credentials_release(creds);
		if (port == 0) {
			log_error("cannot listen on %s (directory missing or not writable?)", addr);
			return SFTCA_ERR_IO;
		}
		/* Born 0660 under the umask: no chmod by name, which as root in a
		 * directory others may write could follow a symlink planted there. */
		if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) || (st.st_mode & 0777) != 0660) {
			log_error("%s: not a socket of mode 0660 after binding: refusing to serve",
				  path);
			return SFTCA_ERR_IO;
		}
		log_info("listening on %s (mode 0660, role %s)", addr,
			 role_name(srv->o->cfg->unix_role));
		return 0;
	}
	int port = grpc_server_add_http2_port(srv->gs, addr, tls);
	const char *colon = strrchr(addr, ':');

	if (port == 0) {
		log_error("cannot listen on %s (address in use or not local?)", addr);
		return SFTCA_ERR_IO;
	}
	/* With port 0 the kernel picks one: say which, for scripts and tests. */
	log_info("listening on %.*s:%d (mutual TLS)", (int)(colon - addr), addr, port);
	return 0;
}

static grpc_server_credentials *tls_credentials(const struct signer_config *cfg)
{
	struct tls_files tf;
	grpc_ssl_pem_key_cert_pair pair;
	grpc_server_credentials *creds;

	if (tls_files_load(cfg->tls_cert, cfg->tls_key, cfg->client_ca, &tf) != 0)
		return NULL;
	pair.cert_chain = tf.cert_pem;
	pair.private_key = tf.key_pem;
	creds = grpc_ssl_server_credentials_create_ex(
		tf.ca_pem, &pair, 1, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
	tls_files_clear(&tf);
	return creds;
}

int server_reload_client_crl(struct server *srv)
{
	const struct signer_config *cfg = srv->o->cfg;
	struct client_crl *crl, *old;
	size_t ncrls, nrevoked;

	if (cfg->client_crl == NULL)
		return 0;
	if ((crl = client_crl_load(cfg->client_crl, cfg->client_ca)) == NULL) {
		log_error("client_crl %s not (re)loaded; %s", cfg->client_crl,
			  srv->crl ? "the previous one stays in force" : "cannot start");
		return SFTCA_ERR_CONFIG;
	}
	client_crl_counts(crl, &ncrls, &nrevoked);
	pthread_mutex_lock(&srv->crl_mu);
	old = srv->crl;
	srv->crl = crl;
	pthread_mutex_unlock(&srv->crl_mu);
	client_crl_free(old);
	log_info("client_crl %s loaded: %zu CRLs, %zu client certificates revoked", cfg->client_crl,
		 ncrls, nrevoked);
	return 0;
}

int server_bind(const struct server_opts *o, struct server **out)
{
	const struct signer_config *cfg = o->cfg;
	struct server *srv = calloc(1, sizeof(*srv));
	grpc_server_credentials *tls = NULL;
	grpc_arg args[5];
	grpc_channel_args chargs = { 5, args };
	grpc_resource_quota *quota;
	int r = SFTCA_ERR_IO, need_tls = 0;

	*out = NULL;
	if (srv == NULL)
		return SFTCA_ERR_NOMEM;
	srv->o = o;
	srv->t_shutdown = (struct tag){ TAG_SHUTDOWN, NULL };
	if ((srv->ids = calloc(cfg->max_calls, sizeof(*srv->ids))) == NULL) {
		free(srv);
		return SFTCA_ERR_NOMEM;
	}
	pthread_mutex_init(&srv->mu, NULL);
	pthread_mutex_init(&srv->crl_mu, NULL);
	pthread_cond_init(&srv->cv, NULL);
	args[0] = (grpc_arg){ GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
			      { .integer = (int)cfg->max_message } };
	args[1] = (grpc_arg){ GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
			      { .integer = (int)cfg->max_message } };
	/* A second signer on the same port must fail, not share it. */
	args[2] = (grpc_arg){ GRPC_ARG_INTEGER, (char *)GRPC_ARG_ALLOW_REUSEPORT, { .integer = 0 } };
	args[3] = (grpc_arg){ GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_CONCURRENT_STREAMS,
			      { .integer = (int)(cfg->max_calls + 1) } };
	/* gRPC 1.51 reads a whole request before it compares it with
	 * max_message_bytes, so without a quota what clients send, not these
	 * limits, decides how much memory calls take. Past the quota gRPC
	 * shrinks flow-control windows and resets the largest streams
	 * (RESOURCE_EXHAUSTED at the client). */
	quota = grpc_resource_quota_create("sftca-signer");
	grpc_resource_quota_resize(quota, QUOTA_BASE + 2 * (size_t)cfg->max_calls * cfg->max_message);
	args[4].type = GRPC_ARG_POINTER;
	args[4].key = (char *)GRPC_ARG_RESOURCE_QUOTA;
	args[4].value.pointer.p = quota;
	args[4].value.pointer.vtable = grpc_resource_quota_arg_vtable();
	srv->gs = grpc_server_create(&chargs, NULL);
	grpc_resource_quota_unref(quota); /* the server holds its own reference */
	srv->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(srv->gs, srv->cq, NULL);
	if (cfg->client_crl && server_reload_client_crl(srv) != 0) {
		r = SFTCA_ERR_CONFIG;
		goto fail;
	}
	for (size_t i = 0; i < cfg->nlisten; i++)
		if (strncmp(cfg->listen[i], "unix:", 5) != 0)
			need_tls = 1;
	if (need_tls && (tls = tls_credentials(cfg)) == NULL) {
		log_error("TLS files (tls_cert, tls_key, client_ca) cannot be used");
		r = SFTCA_ERR_CONFIG;
		goto fail;
	}
	for (size_t i = 0; i < cfg->nlisten; i++)
		if ((r = add_listener(srv, cfg->listen[i], tls)) != 0)
			goto fail;
	if (tls)
		grpc_server_credentials_release(tls);
	*out = srv;
	return 0;
fail:
	if (tls)
		grpc_server_credentials_release(tls);
	server_stop(srv, 0);
	return r;
}

int server_run(struct server *srv)
{
	unsigned want = srv->o->cfg->workers;

	grpc_server_start(srv->gs);
	srv->started = 1;
	if (pthread_create(&srv->event_thread, NULL, event_main, srv) != 0)
		return SFTCA_ERR_INTERNAL;
	srv->event_started = 1;
	for (int i = 0; i < ACCEPT_SLOTS; i++)
		if (post_accept(srv) != 0)
			return SFTCA_ERR_INTERNAL;
	if ((srv->workers = calloc(want, sizeof(pthread_t))) == NULL)
		return SFTCA_ERR_NOMEM;
	for (unsigned i = 0; i < want; i++) {
		if (pthread_create(&srv->workers[i], NULL, worker_main, srv) != 0)
			return SFTCA_ERR_INTERNAL;
		srv->nworkers++;
	}
	return 0;
}

void server_stop(struct server *srv, int grace_ms)
{
	struct timespec ts;
	int cancelled = 0;

	if (srv == NULL)
		return;
	pthread_mutex_lock(&srv->mu);
	srv->stopping = 1;
	if (!srv->event_started) /* nobody would deliver the shutdown tag */
		srv->shutdown_done = 1;
	pthread_mutex_unlock(&srv->mu);
	if (srv->event_started)
		grpc_server_shutdown_and_notify(srv->gs, srv->cq, &srv->t_shutdown);

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += grace_ms / 1000;
	ts.tv_nsec += (long)(grace_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&srv->mu);
	while (!srv->shutdown_done || srv->in_flight > 0) {
		if (!cancelled &&
		    pthread_cond_timedwait(&srv->cv, &srv->mu, &ts) == ETIMEDOUT) {
			log_warn("%u calls still running after %d ms: cancelling them",
				 srv->in_flight, grace_ms);
			pthread_mutex_unlock(&srv->mu);
			grpc_server_cancel_all_calls(srv->gs);
			pthread_mutex_lock(&srv->mu);
			cancelled = 1;
		} else if (cancelled) {
			pthread_cond_wait(&srv->cv, &srv->mu);
		}
	}
	srv->workers_stop = 1;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	for (unsigned i = 0; i < srv->nworkers; i++)
		pthread_join(srv->workers[i], NULL);
	if (!srv->event_started) {
		/* Bound but never served: gRPC still wants a shutdown before
		 * destroy; its notification is drained here. */
		grpc_event ev;
		grpc_server_shutdown_and_notify(srv->gs, srv->cq, &srv->t_shutdown);
		grpc_server_cancel_all_calls(srv->gs);
		do
			ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
							NULL);
		while (ev.type == GRPC_OP_COMPLETE && ev.tag != &srv->t_shutdown);
	}
	grpc_completion_queue_shutdown(srv->cq);
	if (srv->event_started)
		pthread_join(srv->event_thread, NULL);
	else
		while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
			       .type != GRPC_QUEUE_SHUTDOWN)
			;
	grpc_server_destroy(srv->gs);
	grpc_completion_queue_destroy(srv->cq);
	pthread_mutex_destroy(&srv->mu);
	pthread_cond_destroy(&srv->cv);
	free(srv->workers);
	free(srv->ids);
	client_crl_free(srv->crl);
	pthread_mutex_destroy(&srv->crl_mu);
	free(srv);
}
