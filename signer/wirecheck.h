/* A walk over protobuf wire bytes before protobuf-c unpacks them. protobuf-c
 * keeps every unknown field, and every element of a repeated field, as its
 * own allocation: a few MiB of two-byte fields become millions of heap
 * objects. This looks at the bytes only and allocates nothing. */
#ifndef SFTCA_WIRECHECK_H
#define SFTCA_WIRECHECK_H

#include "msg.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* Unknown fields a message (nested ones included) may carry: a few, so a
 * newer client's optional field still works, never thousands. */
#define WIRE_MAX_UNKNOWN 8
#define WIRE_MAX_DEPTH 8

/* 0 when data (len bytes) is a well-formed message of type d with at most
 * WIRE_MAX_UNKNOWN unknown fields and at most max_repeated elements in any
 * repeated field; otherwise SFTCA_ERR_INVALID or SFTCA_ERR_LIMIT and why
 * says what, for the caller. */
int wire_check(const uint8_t *data, size_t len, const ProtobufCMessageDescriptor *d,
	       size_t max_repeated, struct sftca_msg *why) __attribute__((warn_unused_result));

#endif
