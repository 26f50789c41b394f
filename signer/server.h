/* The gRPC server: listeners (unix socket, TCP with mutual TLS), caller
 * identity and role, limits, and a pool of handler threads. Handlers are
 * plain functions from a request message to a reply message. */
#ifndef SFTCA_SERVER_H
#define SFTCA_SERVER_H

#include "config.h"
#include "signer.h"

#include <protobuf-c/protobuf-c.h>

struct arena;
struct server;

/* Returns 0 and sets *resp (from the arena), or an SFTCA_ERR_* code with a
 * message for the caller in call->msg. call->token carries the deadline. */
typedef int (*server_handler)(struct signer *s, const struct caller *who,
			      const ProtobufCMessage *req, struct arena *a, ProtobufCMessage **resp,
			      struct signer_call *call);

struct server_method {
	const char *path;                         /* "/sftca.v1.Signer/GetStatus" */
	const ProtobufCMessageDescriptor *request;
	enum role min_role;                       /* ROLE_NONE: any verified caller */
	server_handler fn;
};

struct server_opts {
	const struct signer_config *cfg;
	const struct server_method *methods;
	size_t nmethods;
	struct signer *signer;
};

/* Bind every listener (errors name it); nothing is served yet, so this can
 * run before privileges are dropped and the token is opened. */
int server_bind(const struct server_opts *o, struct server **out)
	__attribute__((warn_unused_result));
/* (Re)read [signer] client_crl (SIGHUP); on failure the CRLs in force
 * stay and the reason is logged. */
int server_reload_client_crl(struct server *srv);
/* Start serving; o->signer must be complete by now. */
int server_run(struct server *srv) __attribute__((warn_unused_result));
/* Stop accepting, let calls in flight finish (at most grace_ms, then
 * cancel them), and free everything. */
void server_stop(struct server *srv, int grace_ms);

#endif
