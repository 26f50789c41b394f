/* Printing CA descriptions from the signer (status, ca). */
#ifndef SFTCA_CAINFO_H
#define SFTCA_CAINFO_H

#include "sftca/v1/signer.pb-c.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

const char *generation_state_name(Sftca__V1__GenerationState s);
/* "shared", "exclusive", "unknown". */
const char *custody_wire_name(Sftca__V1__Custody c);
/* A table of the CA's generations. */
void cainfo_print(FILE *f, const Sftca__V1__CAInfo *ci, int64_t now);
json_t *cainfo_json(const Sftca__V1__CAInfo *ci, int64_t now);
/* Warn on stderr when the active generation is within 90 (warning) or 30
 * (critical) days of expiry, or expired; returns the expiry state. */
int cainfo_warn(const Sftca__V1__CAInfo *ci, int64_t now);
/* 1 when the active generation is within EXPIRY_RULES_DAYS of its
 * notAfter, or past it: the expiry rules apply. */
int cainfo_rules_apply(const Sftca__V1__CAInfo *ci, int64_t now);
/* The expiry rules (expiry.h) as a JSON array of strings, for the
 * "expiry_rules" field of status, check and issue. */
json_t *expiry_rules_json(void);
/* Print a JSON value to stdout followed by a newline; consumes it. */
void json_print(json_t *j);

#endif
