/* Which method a call names and whether its caller may call it: the
 * server's decision before a byte of the request is read, apart from the
 * gRPC code so that it can be fuzzed on its own (tests/fuzz/fuzz_clientid.c). */
#ifndef SFTCA_CALLAUTH_H
#define SFTCA_CALLAUTH_H

#include "msg.h"
#include "server.h"

/* The entry of methods (n of them) whose path is path, or NULL. */
const struct server_method *server_method_find(const struct server_method *methods, size_t n,
					       const char *path);
/* Whether who may call m; if not, why says so for the caller. */
int server_authorized(const struct caller *who, const struct server_method *m, const char *path,
		      struct sftca_msg *why);

#endif
