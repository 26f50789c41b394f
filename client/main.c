/* sftca: renew an FMC's sftunnel certificates through sftca-signer, push
 * them to devices, and prove the tunnels work. */
#include "client.h"

#include "log.h"

#include <grpc/grpc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	int needs_grpc;
	const char *summary;
};

static const struct command commands[] = {
	{ "status", cmd_status, 1, "token state and every CA: generations, notAfter, days left" },
	{ "ca", cmd_ca, 1, "create, renew, rotate or finalize a CA; print its certificate" },
	{ "issue", cmd_issue, 1, "renew the sftunnel certificates of an FMC tree in place" },
	{ "push", cmd_push, 0, "copy renewed files to devices over SSH and restart sftunnel" },
	{ "fmc", cmd_fmc, 0, "fmc pull / commit: the FMC's files over SSH, from a jump host" },
	{ "devices", cmd_devices, 0, "devices resolve: fill devices.csv's uuid column from the devices" },
	{ "verify", cmd_verify, 1, "check every peer's files (and, with --live, the tunnels)" },
	{ "ledger", cmd_ledger, 1, "list the certificates the signer has on record" },
	{ "revoke", cmd_revoke, 1, "revoke a certificate by serial" },
	{ "crl", cmd_crl, 1, "write a fresh CRL signed by the CA key in the token" },
	{ "check", cmd_check, 0, "expiry of certificate files and trees, offline (monitoring codes)" },
	{ "diagnose", cmd_diagnose, 0, "sftunnel certificate failures in FMC/FTD logs, and what to run" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: sftca [global options] COMMAND [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'sftca COMMAND --help' for the options of a command.\n");
	global_help(f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { GLOBAL_LONG_OPTS,
					      { "version", no_argument, NULL, 'V' },
					      { NULL, 0, NULL, 0 } };
	const struct command *cmd = NULL;
	int c, r;

	log_init("sftca", LOG_STYLE_CLI, LOG_LVL_INFO);
	signal(SIGPIPE, SIG_IGN);
	/* Global options come before the command; "+" stops at the command. */
	opterr = 1;
	while ((c = getopt_long(argc, argv, "+vhV", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return EXIT_OK;
		}
		if (c == 'V') {
			printf("sftca %s\n", SFTCA_VERSION);
			return EXIT_OK;
		}
		if ((r = global_opt(c, optarg)) <= 0) {
			if (r == 0)
				usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL) {
		log_error("unknown command '%s' (sftca --help lists them)", argv[optind]);
		return EXIT_USAGE;
	}
	if (cmd->needs_grpc)
		grpc_init();
	/* Each command parses its own argv (index 0 = its name) afresh;
	 * optind = 0 makes glibc's getopt start over. */
	{
		int first = optind;
		optind = 0;
		r = cmd->fn(argc - first, argv + first);
	}
	if (cmd->needs_grpc)
		grpc_shutdown_blocking();
	return r;
}
