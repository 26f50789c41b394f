#include "rpc.h"

#include "errors.h"
#include "log.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rpc_pack(const ProtobufCMessage *msg, grpc_byte_buffer **out)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	grpc_slice slice = grpc_slice_malloc(len);

	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
	*out = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return *out ? 0 : SFTCA_ERR_NOMEM;
}

int rpc_unpack_bytes(const unsigned char *data, size_t len, const ProtobufCMessageDescriptor *desc,
		     ProtobufCMessage **out)
{
	*out = protobuf_c_message_unpack(desc, NULL, len, data);
	return *out ? 0 : SFTCA_ERR_INVALID;
}

int rpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc, size_t max_len,
	       ProtobufCMessage **out)
{
	grpc_byte_buffer_reader reader;
	grpc_slice slice;
	int r;

	*out = NULL;
	if (bb == NULL)
		return rpc_unpack_bytes(NULL, 0, desc, out);
	if (grpc_byte_buffer_length(bb) > max_len)
		return SFTCA_ERR_LIMIT;
	if (!grpc_byte_buffer_reader_init(&reader, bb))
		return SFTCA_ERR_INVALID;
	slice = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	r = rpc_unpack_bytes(GRPC_SLICE_START_PTR(slice), GRPC_SLICE_LENGTH(slice), desc, out);
	grpc_slice_unref(slice);
	return r;
}

grpc_status_code rpc_status_from_err(int r)
{
	switch (r) {
	case 0:
		return GRPC_STATUS_OK;
	case SFTCA_ERR_INVALID:
	case SFTCA_ERR_VERIFY:
		return GRPC_STATUS_INVALID_ARGUMENT;
	case SFTCA_ERR_NOT_FOUND:
		return GRPC_STATUS_NOT_FOUND;
	case SFTCA_ERR_EXISTS:
		return GRPC_STATUS_ALREADY_EXISTS;
	case SFTCA_ERR_DENIED:
		return GRPC_STATUS_PERMISSION_DENIED;
	case SFTCA_ERR_AUTH:
		return GRPC_STATUS_UNAUTHENTICATED;
	case SFTCA_ERR_TOKEN_LOST:
	case SFTCA_ERR_UNAVAILABLE:
	/* The ledger cannot be read or written now (a database restarting):
	 * the call may be retried, on this signer or another. */
	case SFTCA_ERR_LEDGER:
		return GRPC_STATUS_UNAVAILABLE;
	case SFTCA_ERR_TIMEOUT:
		return GRPC_STATUS_DEADLINE_EXCEEDED;
	case SFTCA_ERR_PRECONDITION:
		return GRPC_STATUS_FAILED_PRECONDITION;
	case SFTCA_ERR_LIMIT:
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case SFTCA_ERR_CANCELLED:
		return GRPC_STATUS_CANCELLED;
	default:
		return GRPC_STATUS_INTERNAL;
	}
}

int rpc_err_from_status(grpc_status_code c)
{
	switch (c) {
	case GRPC_STATUS_OK:
		return 0;
	case GRPC_STATUS_INVALID_ARGUMENT:
		return SFTCA_ERR_INVALID;
	case GRPC_STATUS_NOT_FOUND:
		return SFTCA_ERR_NOT_FOUND;
	case GRPC_STATUS_ALREADY_EXISTS:
		return SFTCA_ERR_EXISTS;
	case GRPC_STATUS_PERMISSION_DENIED:
		return SFTCA_ERR_DENIED;
	case GRPC_STATUS_UNAUTHENTICATED:
		return SFTCA_ERR_AUTH;
	case GRPC_STATUS_UNAVAILABLE:
		return SFTCA_ERR_UNAVAILABLE;
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		return SFTCA_ERR_TIMEOUT;
	case GRPC_STATUS_FAILED_PRECONDITION:
		return SFTCA_ERR_PRECONDITION;
	case GRPC_STATUS_RESOURCE_EXHAUSTED:
		return SFTCA_ERR_LIMIT;
	case GRPC_STATUS_CANCELLED:
		return SFTCA_ERR_CANCELLED;
	default:
		return SFTCA_ERR_RPC;
	}
}

const char *rpc_status_name(grpc_status_code c)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
		"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};
	return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "UNKNOWN";
}

struct rpc_client {
	grpc_channel *channel;
	size_t max_message;
};

struct rpc_client *rpc_client_new(const struct rpc_client_opts *o)
{
	struct rpc_client *c = calloc(1, sizeof(*c));
	grpc_channel_credentials *creds;
	grpc_arg args[2];
	grpc_channel_args chargs = { .num_args = 2, .args = args };

	if (c == NULL)
		return NULL;
	c->max_message = o->max_message ? o->max_message : RPC_DEFAULT_MAX_MESSAGE;
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[0].value.integer = (int)c->max_message;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
	args[1].value.integer = (int)c->max_message;

	if (strncmp(o->target, "unix:", 5) == 0) {
		creds = grpc_insecure_credentials_create();
	} else {
		grpc_ssl_pem_key_cert_pair pair = { o->key_pem, o->cert_pem };
		if (o->ca_pem == NULL) {
			log_error("signer %s is a TCP address: the signer's CA is needed (--tls-ca)",
				  o->target);
			free(c);
			return NULL;
		}
		/* Without a client identity the signer refuses the handshake;
		 * allowed here so that tests can show exactly that. */
		creds = grpc_ssl_credentials_create(
			o->ca_pem, o->cert_pem && o->key_pem ? &pair : NULL, NULL, NULL);
	}
	if (creds == NULL) {
		log_error("cannot create credentials for %s", o->target);
		free(c);
		return NULL;
	}
	c->channel = grpc_channel_create(o->target, creds, &chargs);
	grpc_channel_credentials_release(creds);
	if (c->channel == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

grpc_channel *rpc_client_channel(struct rpc_client *c)
{
	return c->channel;
}

void rpc_client_free(struct rpc_client *c)
{
	if (c == NULL)
		return;
	grpc_channel_destroy(c->channel);
	free(c);
}

int rpc_call_raw(struct rpc_client *c, const char *method, const unsigned char *req, size_t req_len,
		 const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
		 ProtobufCMessage **resp, struct rpc_result *res)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
					     gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
	grpc_metadata_array initial_md, trailing_md;
	grpc_byte_buffer *send_bb = NULL, *recv_bb = NULL;
	grpc_slice status_details = grpc_empty_slice();
	grpc_slice mslice = grpc_slice_from_static_string(method);
	grpc_slice send_slice;
	grpc_call *call;
	grpc_op ops[6];
	grpc_event ev;
	int r;

	*resp = NULL;
	res->status = GRPC_STATUS_UNKNOWN;
	res->details[0] = '\0';
	grpc_metadata_array_init(&initial_md);
	grpc_metadata_array_init(&trailing_md);
	send_slice = grpc_slice_from_copied_buffer((const char *)req, req_len);
	send_bb = grpc_raw_byte_buffer_create(&send_slice, 1);
	grpc_slice_unref(send_slice);

	call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, mslice, NULL,
					deadline, NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send_bb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv_bb;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
	ops[5].data.recv_status_on_client.status = &res->status;
	ops[5].data.recv_status_on_client.status_details = &status_details;

	if (grpc_call_start_batch(call, ops, 6, (void *)1, NULL) != GRPC_CALL_OK) {
		snprintf(res->details, sizeof(res->details), "cannot start the call");
		r = SFTCA_ERR_RPC;
		goto out;
	}
	/* The deadline is enforced by gRPC, which completes the batch with
	 * DEADLINE_EXCEEDED; the infinite wait here always ends. */
	ev = grpc_completion_queue_pluck(cq, (void *)1, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (ev.type != GRPC_OP_COMPLETE) {
		snprintf(res->details, sizeof(res->details), "call did not complete");
		r = SFTCA_ERR_RPC;
		goto out;
	}
	snprintf(res->details, sizeof(res->details), "%.*s", (int)GRPC_SLICE_LENGTH(status_details),
		 (const char *)GRPC_SLICE_START_PTR(status_details));
	if (res->status != GRPC_STATUS_OK) {
		r = rpc_err_from_status(res->status);
		goto out;
	}
	if ((r = rpc_unpack(recv_bb, resp_desc, c->max_message, resp)) != 0)
		snprintf(res->details, sizeof(res->details), "reply does not parse as %s",
			 resp_desc->name);
out:
	grpc_call_unref(call);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	grpc_slice_unref(status_details);
	grpc_metadata_array_destroy(&initial_md);
	grpc_metadata_array_destroy(&trailing_md);
	grpc_byte_buffer_destroy(send_bb);
	if (recv_bb)
		grpc_byte_buffer_destroy(recv_bb);
	return r;
}

int rpc_call(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
	     const ProtobufCMessageDescriptor *resp_desc, int timeout_ms, ProtobufCMessage **resp,
	     struct rpc_result *res)
{
	size_t len = protobuf_c_message_get_packed_size(req);
	unsigned char *buf = malloc(len ? len : 1);
	int r;

	if (buf == NULL)
		return SFTCA_ERR_NOMEM;
	protobuf_c_message_pack(req, buf);
	r = rpc_call_raw(c, method, buf, len, resp_desc, timeout_ms, resp, res);
	free(buf);
	return r;
}
