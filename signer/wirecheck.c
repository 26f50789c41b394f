#include "wirecheck.h"

#include "errors.h"


struct walk {
	size_t max_repeated;
	size_t unknown;
	struct sftca_msg *why;
};

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* Elements in a packed repeated field's payload. */
static size_t packed_count(const ProtobufCFieldDescriptor *f, const uint8_t *p, size_t n)
{
	size_t count = 0;

	switch (f->type) {
	case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_FLOAT:
		return n / 4;
	case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return n / 8;
	default: /* varints: one per byte without the continuation bit */
		for (size_t i = 0; i < n; i++)
			count += (p[i] & 0x80) == 0;
		return count;
	}
}

static int walk(struct walk *w, const uint8_t *p, const uint8_t *end,
		const ProtobufCMessageDescriptor *d, unsigned depth)
{
	size_t counts[64] = { 0 }; /* per field of d, in descriptor order */

	if (depth > WIRE_MAX_DEPTH) {
		return msg_fail(w->why, SFTCA_ERR_INVALID, "messages nested more than %d deep",
				WIRE_MAX_DEPTH);
	}
	while (p < end) {
		const ProtobufCFieldDescriptor *f;
		uint64_t key, n = 0;
		const uint8_t *body;
		unsigned wt;

		if (varint(&p, end, &key) != 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
			goto malformed;
		wt = (unsigned)(key & 7);
		body = p;
		switch (wt) {
		case 0:
			if (varint(&p, end, &n) != 0)
				goto malformed;
			break;
		case 1:
			if (end - p < 8)
				goto malformed;
			p += 8;
			break;
		case 2:
			if (varint(&p, end, &n) != 0 || n > (uint64_t)(end - p))
				goto malformed;
			body = p;
			p += n;
			break;
		case 5:
			if (end - p < 4)
				goto malformed;
			p += 4;
			break;
		default: /* groups (3, 4) and reserved types: nothing sftca sends */
			goto malformed;
		}
		f = protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
		if (f == NULL) {
			if (++w->unknown > WIRE_MAX_UNKNOWN) {
				return msg_fail(w->why, SFTCA_ERR_INVALID,
						"more than %d fields unknown to this signer (%s field %u)",
						WIRE_MAX_UNKNOWN, d->name, (unsigned)(key >> 3));
			}
			continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t i = (size_t)(f - d->fields);
			size_t add = (wt == 2 && f->type != PROTOBUF_C_TYPE_STRING &&
				      f->type != PROTOBUF_C_TYPE_BYTES && f->type != PROTOBUF_C_TYPE_MESSAGE)
					     ? packed_count(f, body, (size_t)n)
					     : 1;
			if (i < sizeof(counts) / sizeof(counts[0]) &&
			    (counts[i] += add) > w->max_repeated) {
				return msg_fail(w->why, SFTCA_ERR_LIMIT, "more than %zu %s in one %s",
						w->max_repeated, f->name, d->name);
			}
		}
		if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			int r;
			if (wt != 2)
				goto malformed;
			if ((r = walk(w, body, body + n, f->descriptor, depth + 1)) != 0)
				return r;
		}
	}
	return 0;
malformed:
	return msg_fail(w->why, SFTCA_ERR_INVALID, "request is not a valid %s (malformed protobuf)",
			d->name);
}

int wire_check(const uint8_t *data, size_t len, const ProtobufCMessageDescriptor *d,
	       size_t max_repeated, struct sftca_msg *why)
{
	struct walk w = { max_repeated, 0, why };

	if (len == 0)
		return 0;
	return walk(&w, data, data + len, d, 0);
}
