/* The RPC handlers: request message in, reply message out (DESIGN.md 3). */
#ifndef SFTCA_HANDLERS_H
#define SFTCA_HANDLERS_H

#include "server.h"
#include "grpc/health/v1/health.pb-c.h"
#include "sftca/v1/signer.pb-c.h"

#include <stddef.h>

extern const struct server_method signer_methods[];
extern const size_t signer_nmethods;

/* Shared by the handler files. */
struct arena;
Sftca__V1__CAInfo *handlers_ca_info(struct signer *s, struct arena *a, const char *ca_id);
int handlers_check_ca_id(const char *ca_id, struct sftca_msg *msg);
/* An issuer may be limited to some CAs by its [authz] line: it issues for
 * them and sees only them (GetStatus, GetCRL, ListIssued). 1 = allowed. */
int handlers_ca_allowed(const struct caller *who, const char *ca_id);
/* NULL when who sees every CA, else ",id1,id2," (struct ledger_filter's ca_scope). */
const char *handlers_ca_scope(const struct caller *who, struct arena *a);

/* handlers_ca.c */
int rpc_get_status(struct signer *, const struct caller *, const ProtobufCMessage *,
		   struct arena *, ProtobufCMessage **, struct signer_call *);
int rpc_create_ca(struct signer *, const struct caller *, const ProtobufCMessage *,
		  struct arena *, ProtobufCMessage **, struct signer_call *);
int rpc_renew_ca(struct signer *, const struct caller *, const ProtobufCMessage *,
		 struct arena *, ProtobufCMessage **, struct signer_call *);
int rpc_rotate_ca(struct signer *, const struct caller *, const ProtobufCMessage *,
		  struct arena *, ProtobufCMessage **, struct signer_call *);
int rpc_finalize_ca(struct signer *, const struct caller *, const ProtobufCMessage *,
		    struct arena *, ProtobufCMessage **, struct signer_call *);
int rpc_get_ca(struct signer *, const struct caller *, const ProtobufCMessage *, struct arena *,
	       ProtobufCMessage **, struct signer_call *);
int rpc_revoke(struct signer *, const struct caller *, const ProtobufCMessage *, struct arena *,
	       ProtobufCMessage **, struct signer_call *);
int rpc_get_crl(struct signer *, const struct caller *, const ProtobufCMessage *, struct arena *,
		ProtobufCMessage **, struct signer_call *);
int rpc_set_custody(struct signer *, const struct caller *, const ProtobufCMessage *,
		    struct arena *, ProtobufCMessage **, struct signer_call *);
/* handlers_issue.c */
int rpc_issue_batch(struct signer *, const struct caller *, const ProtobufCMessage *,
		    struct arena *, ProtobufCMessage **, struct signer_call *);
int rpc_list_issued(struct signer *, const struct caller *, const ProtobufCMessage *,
		    struct arena *, ProtobufCMessage **, struct signer_call *);
int rpc_health_check(struct signer *, const struct caller *, const ProtobufCMessage *,
		     struct arena *, ProtobufCMessage **, struct signer_call *);

#endif
