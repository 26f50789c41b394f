/* The sftca CLI: global options and the client configuration (options.c),
 * calls to the signer (call.c), output helpers (output.c), and one function
 * per subcommand (client/cmd_*.c). */
#ifndef SFTCA_CLIENT_H
#define SFTCA_CLIENT_H

#include "rpc.h"

#include <getopt.h>
#include <stdio.h>

/* Exit codes (DESIGN.md 6). */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

struct global_opts {
	const char *signer, *tls_cert, *tls_key, *tls_ca, *config;
	int json;
	int timeout_s;    /* per RPC */
	int verbose;
};

extern struct global_opts g_opts;

/* Options every subcommand accepts, for getopt_long tables. */
#define GLOBAL_LONG_OPTS \
	{ "signer", required_argument, NULL, 0x100 }, \
	{ "tls-cert", required_argument, NULL, 0x101 }, \
	{ "tls-key", required_argument, NULL, 0x102 }, \
	{ "tls-ca", required_argument, NULL, 0x103 }, \
	{ "config", required_argument, NULL, 0x104 }, \
	{ "json", no_argument, NULL, 0x105 }, \
	{ "timeout", required_argument, NULL, 0x106 }, \
	{ "verbose", no_argument, NULL, 'v' }, \
	{ "help", no_argument, NULL, 'h' }

/* Handle a global option returned by getopt_long; 1 if it was one, 0 if
 * not, -1 on a bad value (already reported). */
int global_opt(int c, const char *arg);
/* Help text for the global options, appended to every --help. */
void global_help(FILE *f);

/* [client] of the client configuration: --config FILE, else
 * /etc/sftca/client.conf (a missing default file is empty). */
struct client_conf {
	char *signer, *tls_cert, *tls_key, *tls_ca, *known_hosts;
};
/* Load it; 0, or -1 (reported with file and line). */
int client_conf_load(struct client_conf *cf) __attribute__((warn_unused_result));
void client_conf_free(struct client_conf *cf);
/* The file client_conf_load reads, for messages. */
const char *client_conf_path(void);

/* The known_hosts file for device connections: flag (--known-hosts), else
 * known_hosts = in [client] of the client config, else .ssh/known_hosts in
 * the home that the password database gives the real uid (never $HOME).
 * source says which, for the operator. 0, or -1 (reported). */
int client_known_hosts(const char *flag, char *buf, size_t len, char *source, size_t srclen)
	__attribute__((warn_unused_result));
/* 1 when flags, environment or client config name a signer (commands that
 * work offline ask it only then). */
int client_signer_named(void);
/* Most signer addresses one list may name. */
#define CLIENT_MAX_SIGNERS 16
/* The signers named by flags, environment or client config: one address, or
 * a comma-separated list of signers sharing one ledger, tried in order. Safe
 * to share between threads. NULL (reported) on a bad list or TLS files. */
struct signer_conn;
struct signer_conn *client_connect(void);
void client_close(struct signer_conn *c);
/* One unary call with the global timeout; reports failures on stderr as
 * "sftca: METHOD: STATUS: details". */
int client_call(struct signer_conn *c, const char *method, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp)
	__attribute__((warn_unused_result));
/* Same with a timeout of its own and nothing reported: res says what failed,
 * *used (if not NULL) which address answered, or SIZE_MAX when every one was
 * tried and was out of reach. A signer out of
 * reach (UNAVAILABLE, or a deadline that passed unconnected) hands the call
 * to the next address, each address at most once per call, with a warning
 * per switch; later calls start at the address that last worked. When all
 * fail, res->details names each address and why. */
int client_call_res(struct signer_conn *c, const char *method, const ProtobufCMessage *req,
		    const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
		    ProtobufCMessage **resp, struct rpc_result *res, size_t *used)
	__attribute__((warn_unused_result));
/* Later calls start at the address after `used` (a retry that should not
 * ask the same signer again), with the warning naming both and why; -1
 * when there is no other address or used is SIZE_MAX (all were tried). */
int client_move_on(struct signer_conn *c, size_t used, const char *why);

/* Parse a positive integer option value; reports and returns -1 on error. */
long parse_count(const char *opt, const char *v, long min, long max);
/* "2036-11-25 10:00:00 UTC" */
void fmt_time(long long t, char *buf, size_t len);
/* Replace (or create) the file at path with data, atomically (af_write), mode
 * 0644; reports failures. 0 or -1. */
int write_output_file(const char *path, const void *data, size_t len)
	__attribute__((warn_unused_result));

int cmd_status(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_issue(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_fmc(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_revoke(int argc, char **argv);
int cmd_crl(int argc, char **argv);
int cmd_ledger(int argc, char **argv);
int cmd_diagnose(int argc, char **argv);

#endif
