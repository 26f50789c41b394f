/* Error codes shared by every sftca module: functions return 0 or one of
 * these negative values; sftca_strerror() turns one into text. */
#ifndef SFTCA_ERRORS_H
#define SFTCA_ERRORS_H

enum sftca_err {
	SFTCA_OK = 0,
	SFTCA_ERR_INTERNAL = -1,      /* a bug or an unexpected library failure */
	SFTCA_ERR_NOMEM = -2,
	SFTCA_ERR_INVALID = -3,       /* bad argument or malformed input */
	SFTCA_ERR_IO = -4,            /* a file or socket operation failed */
	SFTCA_ERR_NOT_FOUND = -5,
	SFTCA_ERR_EXISTS = -6,
	SFTCA_ERR_DENIED = -7,        /* caller lacks the role for this */
	SFTCA_ERR_FILE_MODE = -8,     /* secret file readable by group/other */
	SFTCA_ERR_CRYPTO = -9,        /* OpenSSL failure */
	SFTCA_ERR_TOKEN = -10,        /* PKCS#11 operation refused by the token */
	SFTCA_ERR_TOKEN_LOST = -11,   /* token unreachable; recovery under way */
	SFTCA_ERR_PIN = -12,          /* wrong or locked PIN */
	SFTCA_ERR_LEDGER = -13,       /* SQLite failure */
	SFTCA_ERR_RPC = -14,          /* gRPC transport failure */
	SFTCA_ERR_TIMEOUT = -15,      /* deadline passed */
	SFTCA_ERR_PRECONDITION = -16, /* state does not allow this now */
	SFTCA_ERR_LIMIT = -17,        /* a configured limit was exceeded */
	SFTCA_ERR_CONFIG = -18,       /* configuration file problem */
	SFTCA_ERR_SSH = -19,          /* SSH session failure */
	SFTCA_ERR_HOSTKEY = -20,      /* host key unknown or changed */
	SFTCA_ERR_AUTH = -21,         /* authentication refused */
	SFTCA_ERR_UNAVAILABLE = -22,  /* service not serving */
	SFTCA_ERR_VERIFY = -23,       /* a certificate or signature check failed */
	SFTCA_ERR_CANCELLED = -24,
	SFTCA_ERR_MAX_ = -25
};

/* Text for an error code; never NULL. */
const char *sftca_strerror(int r);

#endif
