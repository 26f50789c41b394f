/* The command-line options of the commands that log into devices (push,
 * devices resolve): how to connect, and how to read who a device is. */
#ifndef SFTCA_CONNOPTS_H
#define SFTCA_CONNOPTS_H

#include "devconn.h"
#include "devices.h"

#include <stdio.h>

struct conn_args {
	const char *devices;        /* --devices devices.csv */
	int jobs;                   /* --jobs: devices at once */
	struct devconn_opts conn;
	enum device_shell shell;    /* rows without a shell column */
	const char *ca_id;          /* --ca: the FMC's UUID */
	const char *device_dir;     /* --device-dir */
	const char *identity_file;  /* --identity-file */
	const char *kh_flag;        /* --known-hosts, or NULL */
	char kh_path[4096], kh_source[4200];
};

#define CONN_LONG_OPTS \
	{ "devices", required_argument, NULL, 'd' }, \
	{ "jobs", required_argument, NULL, 'j' }, \
	{ "ca", required_argument, NULL, 'c' }, \
	{ "known-hosts", required_argument, NULL, 'k' }, \
	{ "accept-new-host-keys", no_argument, NULL, 'a' }, \
	{ "identity", required_argument, NULL, 'i' }, \
	{ "shell", required_argument, NULL, 's' }, \
	{ "ssh-timeout", required_argument, NULL, 't' }, \
	{ "device-timeout", required_argument, NULL, 'T' }, \
	{ "device-dir", required_argument, NULL, 'D' }, \
	{ "identity-file", required_argument, NULL, 0x200 }

/* Defaults: 8 jobs, ftd shell, 30 s a step, 300 s a device. */
void conn_args_init(struct conn_args *a, const char *device_dir);
/* 1 when ch (from getopt_long over CONN_LONG_OPTS) was one of them, 0 when
 * not, -1 on a bad value (reported). */
int conn_opt(struct conn_args *a, int ch, const char *arg);
/* Once parsed: --ca checked when given, the known_hosts file chosen. 0 or
 * an exit code (reported). */
int conn_args_finish(struct conn_args *a);
/* A dry run of cmd writes nothing, a host key included: 0, or EXIT_USAGE
 * after saying so when --accept-new-host-keys asks for one. */
int conn_args_dry_run(const struct conn_args *a, const char *cmd);
/* The help lines of these options. */
void conn_help(FILE *f);

#endif
