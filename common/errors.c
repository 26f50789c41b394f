#include "errors.h"

static const char *const messages[] = {
	[0] = "success",
	[-SFTCA_ERR_INTERNAL] = "internal error",
	[-SFTCA_ERR_NOMEM] = "out of memory",
	[-SFTCA_ERR_INVALID] = "invalid argument",
	[-SFTCA_ERR_IO] = "input/output error",
	[-SFTCA_ERR_NOT_FOUND] = "not found",
	[-SFTCA_ERR_EXISTS] = "already exists",
	[-SFTCA_ERR_DENIED] = "permission denied",
	[-SFTCA_ERR_FILE_MODE] = "file is accessible by group or others",
	[-SFTCA_ERR_CRYPTO] = "cryptographic operation failed",
	[-SFTCA_ERR_TOKEN] = "token operation failed",
	[-SFTCA_ERR_TOKEN_LOST] = "token unavailable",
	[-SFTCA_ERR_PIN] = "PIN incorrect or locked",
	[-SFTCA_ERR_LEDGER] = "ledger error",
	[-SFTCA_ERR_RPC] = "RPC failed",
	[-SFTCA_ERR_TIMEOUT] = "deadline exceeded",
	[-SFTCA_ERR_PRECONDITION] = "operation not allowed in the current state",
	[-SFTCA_ERR_LIMIT] = "limit exceeded",
	[-SFTCA_ERR_CONFIG] = "configuration error",
	[-SFTCA_ERR_SSH] = "SSH error",
	[-SFTCA_ERR_HOSTKEY] = "host key verification failed",
	[-SFTCA_ERR_AUTH] = "authentication failed",
	[-SFTCA_ERR_UNAVAILABLE] = "service unavailable",
	[-SFTCA_ERR_VERIFY] = "verification failed",
	[-SFTCA_ERR_CANCELLED] = "cancelled",
};

const char *sftca_strerror(int r)
{
	if (r > 0 || r <= SFTCA_ERR_MAX_)
		return "unknown error";
	return messages[-r];
}
