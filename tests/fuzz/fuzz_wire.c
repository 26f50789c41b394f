/* The signer's walk over request bytes before protobuf-c unpacks them
 * (signer/wirecheck.c): byte 0 picks a method of signer_methods[] (its
 * request type), the rest is the request. What the walk accepts must be
 * what protobuf-c then holds within the walk's limits: at most
 * WIRE_MAX_UNKNOWN unknown fields in the whole message and at most
 * FUZZ_MAX_REPEATED elements in any repeated field; a refusal says why. */
#include "fuzz_common.h"

#include "errors.h"
#include "handlers.h"
#include "server.h"
#include "wirecheck.h"

#define FUZZ_MAX_REPEATED 20

static size_t unknown_fields(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	size_t n = m->n_unknown_fields;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t k = *(const size_t *)((const char *)m + f->quantifier_offset);
			ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)base;
			for (size_t j = 0; j < k; j++)
				n += unknown_fields(arr[j]);
		} else if (*(ProtobufCMessage *const *)base) {
			n += unknown_fields(*(ProtobufCMessage *const *)base);
		}
	}
	return n;
}

static void repeated_within(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->label == PROTOBUF_C_LABEL_REPEATED)
			FUZZ_CHECK(*(const size_t *)((const char *)m + f->quantifier_offset) <=
				   FUZZ_MAX_REPEATED);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_wire");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *m;
	struct sftca_msg why;
	int r;

	if (size < 1)
		return 0;
	d = signer_methods[data[0] % signer_nmethods].request;
	msg_clear(&why);
	r = wire_check(data + 1, size - 1, d, FUZZ_MAX_REPEATED, &why);
	FUZZ_CHECK(r == 0 || r == SFTCA_ERR_INVALID || r == SFTCA_ERR_LIMIT);
	FUZZ_CHECK(r == 0 || msg_isset(&why));
	if (r != 0)
		return 0;
	if ((m = protobuf_c_message_unpack(d, NULL, size - 1, data + 1)) == NULL)
		return 0; /* e.g. a wrong wire type for a scalar: protobuf-c refuses */
	FUZZ_CHECK(unknown_fields(m) <= WIRE_MAX_UNKNOWN);
	repeated_within(m);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}
