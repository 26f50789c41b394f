/* The grpc <-> protobuf-c glue: messages survive a byte-buffer round trip,
 * garbage and oversize input are refused, status codes map both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "errors.h"
#include "rpc.h"
#include "sftca/v1/signer.pb-c.h"

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>

static void round_trip_issue_batch(void **state)
{
	Sftca__V1__IssueBatchRequest q = SFTCA__V1__ISSUE_BATCH_REQUEST__INIT;
	Sftca__V1__IssueItem it[3], *items[3];
	unsigned char csr[3][100];
	grpc_byte_buffer *bb = NULL;
	ProtobufCMessage *out = NULL;
	const Sftca__V1__IssueBatchRequest *r;

	(void)state;
	q.ca_id = "cdb123c8-4347-11ef-aca1-f3aa241412a1";
	q.days = 42;
	for (int i = 0; i < 3; i++) {
		sftca__v1__issue_item__init(&it[i]);
		memset(csr[i], 'a' + i, sizeof(csr[i]));
		it[i].peer_uuid = i == 1 ? "6bf1143a-8a2e-11ef-92d8-fd927e807d77" : "x";
		it[i].csr_der.data = csr[i];
		it[i].csr_der.len = sizeof(csr[i]);
		items[i] = &it[i];
	}
	q.items = items;
	q.n_items = 3;
	assert_int_equal(rpc_pack(&q.base, &bb), 0);
	assert_int_equal(rpc_unpack(bb, &sftca__v1__issue_batch_request__descriptor, 1 << 20, &out), 0);
	r = (const void *)out;
	assert_string_equal(r->ca_id, q.ca_id);
	assert_int_equal(r->days, 42);
	assert_int_equal(r->n_items, 3);
	assert_string_equal(r->items[1]->peer_uuid, "6bf1143a-8a2e-11ef-92d8-fd927e807d77");
	assert_int_equal(r->items[2]->csr_der.len, 100);
	assert_memory_equal(r->items[2]->csr_der.data, csr[2], 100);
	protobuf_c_message_free_unpacked(out, NULL);

	/* The same buffer is refused when it exceeds the limit. */
	assert_int_equal(rpc_unpack(bb, &sftca__v1__issue_batch_request__descriptor, 100, &out),
			 SFTCA_ERR_LIMIT);
	assert_null(out);
	grpc_byte_buffer_destroy(bb);
}

static void garbage_is_refused(void **state)
{
	static const unsigned char junk[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01 };
	grpc_slice s = grpc_slice_from_copied_buffer((const char *)junk, sizeof(junk));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	ProtobufCMessage *out = NULL;

	(void)state;
	assert_int_equal(rpc_unpack(bb, &sftca__v1__issue_batch_request__descriptor, 1 << 20, &out),
			 SFTCA_ERR_INVALID);
	assert_null(out);
	grpc_byte_buffer_destroy(bb);
	grpc_slice_unref(s);
}

static void empty_message_unpacks_to_defaults(void **state)
{
	ProtobufCMessage *out = NULL;
	const Sftca__V1__GetCARequest *r;

	(void)state;
	assert_int_equal(rpc_unpack(NULL, &sftca__v1__get_carequest__descriptor, 10, &out), 0);
	r = (const void *)out;
	assert_string_equal(r->ca_id, "");
	assert_int_equal(r->generation, 0);
	protobuf_c_message_free_unpacked(out, NULL);
}

static void status_mapping(void **state)
{
	static const int errs[] = { 0, SFTCA_ERR_INVALID, SFTCA_ERR_NOT_FOUND, SFTCA_ERR_EXISTS,
				    SFTCA_ERR_DENIED, SFTCA_ERR_UNAVAILABLE, SFTCA_ERR_TIMEOUT,
				    SFTCA_ERR_PRECONDITION, SFTCA_ERR_LIMIT, SFTCA_ERR_AUTH };
	(void)state;
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		assert_int_equal(rpc_err_from_status(rpc_status_from_err(errs[i])), errs[i]);
	assert_int_equal(rpc_status_from_err(SFTCA_ERR_TOKEN_LOST), GRPC_STATUS_UNAVAILABLE);
	/* A ledger that cannot be reached now (a database restarting) is an
	 * outage the client retries or fails over, not a bug. */
	assert_int_equal(rpc_status_from_err(SFTCA_ERR_LEDGER), GRPC_STATUS_UNAVAILABLE);
	assert_int_equal(rpc_status_from_err(SFTCA_ERR_CRYPTO), GRPC_STATUS_INTERNAL);
	assert_string_equal(rpc_status_name(GRPC_STATUS_PERMISSION_DENIED), "PERMISSION_DENIED");
	assert_string_equal(rpc_status_name((grpc_status_code)99), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip_issue_batch),
		cmocka_unit_test(garbage_is_refused),
		cmocka_unit_test(empty_message_unpacks_to_defaults),
		cmocka_unit_test(status_mapping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
