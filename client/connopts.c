#include "connopts.h"

#include "client.h"
#include "log.h"
#include "uuid.h"

#include <string.h>

void conn_args_init(struct conn_args *a, const char *device_dir)
{
	memset(a, 0, sizeof(*a));
	a->jobs = 8;
	a->shell = SHELL_FTD;
	a->device_dir = device_dir;
	a->conn.timeout_s = 30;
	a->conn.deadline_s = 300;
}

int conn_opt(struct conn_args *a, int ch, const char *arg)
{
	long v;

	switch (ch) {
	case 'd': a->devices = arg; return 1;
	case 'c': a->ca_id = arg; return 1;
	case 'k': a->kh_flag = arg; return 1;
	case 'a': a->conn.accept_new = 1; return 1;
	case 'i': a->conn.identity = arg; return 1;
	case 'D': a->device_dir = arg; return 1;
	case 0x200: a->identity_file = arg; return 1;
	case 's':
		if (strcmp(arg, "ftd") == 0)
			a->shell = SHELL_FTD;
		else if (strcmp(arg, "direct") == 0)
			a->shell = SHELL_DIRECT;
		else {
			log_error("--shell '%s': ftd or direct", arg);
			return -1;
		}
		return 1;
	case 'j':
	case 't':
	case 'T':
		if ((v = parse_count(ch == 'j' ? "--jobs" : ch == 't' ? "--ssh-timeout" : "--device-timeout",
				     arg, 1, ch == 'T' ? 86400 : 1000)) < 0)
			return -1;
		if (ch == 'j')
			a->jobs = (int)v;
		else if (ch == 't')
			a->conn.timeout_s = (int)v;
		else
			a->conn.deadline_s = (int)v;
		return 1;
	default:
		return 0;
	}
}

int conn_args_dry_run(const struct conn_args *a, const char *cmd)
{
	if (!a->conn.accept_new)
		return 0;
	log_error("%s: --dry-run records no host key: run it without --accept-new-host-keys", cmd);
	return EXIT_USAGE;
}

int conn_args_finish(struct conn_args *a)
{
	if (a->ca_id && !uuid_is_canonical(a->ca_id)) {
		log_error("--ca '%s' is not a canonical lowercase UUID (the FMC's UUID)", a->ca_id);
		return EXIT_USAGE;
	}
	if (a->identity_file && a->identity_file[0] != '/') {
		log_error("--identity-file '%s': an absolute path on the device", a->identity_file);
		return EXIT_USAGE;
	}
	if (client_known_hosts(a->kh_flag, a->kh_path, sizeof(a->kh_path), a->kh_source,
			       sizeof(a->kh_source)) != 0)
		return EXIT_FAIL;
	a->conn.known_hosts = a->kh_path;
	return 0;
}

void conn_help(FILE *f)
{
	fprintf(f,
		"  --jobs N     devices at once (default 8)\n"
		"  --shell      ftd (default): the FTD CLI, expert, sudo su; direct: SFTP and exec\n"
		"  --ssh-timeout S     each step with a device: connect, a command, an upload (default 30)\n"
		"  --device-timeout S  everything with one device, from connect to close (default 300)\n"
		"  --known-hosts FILE  default: known_hosts = in [client] of the client config, else\n"
		"                      ~/.ssh/known_hosts of the real user (password database, not $HOME)\n"
		"  --identity FILE     private key for public-key login (passwords still used for sudo)\n"
		"  --identity-file PATH  direct shell: who the device is comes from this file on the\n"
		"                      device ('UUID : <uuid>' as show version prints it, or the UUID\n"
		"                      alone on the first line), not from its certificate's CN\n"
		"  --device-dir DIR    the peers directory on the device (default /var/sf/peers)\n");
}
