/* gRPC core <-> protobuf-c glue, and the client side of a unary call. */
#ifndef SFTCA_RPC_H
#define SFTCA_RPC_H

#include <grpc/grpc.h>
#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* Default and hard ceilings for one message, both directions. */
#define RPC_DEFAULT_MAX_MESSAGE (16u << 20)

/* Pack msg into a new byte buffer (caller destroys it). */
int rpc_pack(const ProtobufCMessage *msg, grpc_byte_buffer **out)
	__attribute__((warn_unused_result));
/* Unpack a received buffer of at most max_len bytes; free the result with
 * protobuf_c_message_free_unpacked(). A NULL buffer (empty message) unpacks
 * to the default message. */
int rpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc, size_t max_len,
	       ProtobufCMessage **out) __attribute__((warn_unused_result));
/* Same, from bytes already in memory. */
int rpc_unpack_bytes(const unsigned char *data, size_t len, const ProtobufCMessageDescriptor *desc,
		     ProtobufCMessage **out) __attribute__((warn_unused_result));

grpc_status_code rpc_status_from_err(int r);
int rpc_err_from_status(grpc_status_code c);
const char *rpc_status_name(grpc_status_code c);

struct rpc_client;

struct rpc_client_opts {
	const char *target;   /* "unix:/path" or "host:port" */
	const char *cert_pem; /* client identity for TLS targets */
	const char *key_pem;
	const char *ca_pem;   /* trust anchors for the signer's TLS certificate */
	size_t max_message;   /* 0 = RPC_DEFAULT_MAX_MESSAGE */
};

/* A channel to the signer; NULL with a logged reason on failure. Safe to
 * share between threads. grpc_init() must have been called. */
struct rpc_client *rpc_client_new(const struct rpc_client_opts *o);
void rpc_client_free(struct rpc_client *c);
/* Its channel, for callers that drive gRPC calls themselves (tests). */
grpc_channel *rpc_client_channel(struct rpc_client *c);

struct rpc_result {
	grpc_status_code status;
	char details[512];
};

/* One unary call of method ("/pkg.Service/Method") with a deadline in
 * milliseconds. 0 when the call completed with status OK and *resp holds
 * the reply; otherwise the mapped SFTCA_ERR_* and res says what the server
 * (or transport) reported. */
int rpc_call(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
	     const ProtobufCMessageDescriptor *resp_desc, int timeout_ms, ProtobufCMessage **resp,
	     struct rpc_result *res) __attribute__((warn_unused_result));

/* Same with raw request bytes (tests and fuzzing of the server). */
int rpc_call_raw(struct rpc_client *c, const char *method, const unsigned char *req, size_t req_len,
		 const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
		 ProtobufCMessage **resp, struct rpc_result *res) __attribute__((warn_unused_result));

#endif
