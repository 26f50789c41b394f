/* A root shell on a device over SSH (libssh): run a command, write a file.
 * Two flavours behind one interface: "direct" (exec channels and SFTP, for
 * lab hosts and jump hosts) and "ftd" (the FTD's restricted CLI, driven
 * like an operator would: "expert", "sudo su", the password, then shell
 * commands and file contents through that one interactive channel). */
#ifndef SFTCA_DEVCONN_H
#define SFTCA_DEVCONN_H

#include "devices.h"
#include "msg.h"

#include <pthread.h>
#include <stddef.h>

struct devconn;

struct devconn_opts {
	const char *known_hosts;   /* OpenSSH known_hosts file */
	int accept_new;            /* unknown host key: add it (a changed key is always refused) */
	pthread_mutex_t *known_hosts_mu; /* serialises additions across threads */
	const char *identity;      /* private key file for public-key auth, or NULL */
	int timeout_s;             /* connect and per-step timeout */
	int deadline_s;            /* the whole session with one device; 0: none */
};

/* Connect, verify the host key, authenticate, and (ftd) become root.
 * Returns 0 or SFTCA_ERR_SSH / _HOSTKEY / _AUTH / _TIMEOUT with m set. */
int devconn_open(const struct device *d, enum device_shell shell, const struct devconn_opts *o,
		 struct devconn **out, struct sftca_msg *m) __attribute__((warn_unused_result));
void devconn_close(struct devconn *c);

/* Run cmd (POSIX sh) as root; stdout (truncated to outlen-1) and the exit
 * status. 0 when the command ran (whatever its status), else why in m. */
int devconn_run(struct devconn *c, const char *cmd, char *out, size_t outlen, int *status,
		struct sftca_msg *m) __attribute__((warn_unused_result));
/* Create or truncate path with exactly data, mode applied explicitly; 0, or
 * why not in m. */
int devconn_put(struct devconn *c, const char *path, const void *data, size_t len, unsigned mode,
		struct sftca_msg *m) __attribute__((warn_unused_result));

/* ftd: the UUID the CLI's "show version" printed at login; "" when it
 * printed none (and always for direct). */
const char *devconn_version_uuid(const struct devconn *c);
/* ftd: the Model line of the same "show version"; "" when none. */
const char *devconn_version_model(const struct devconn *c);

/* Single-quote s for sh into buf; SFTCA_ERR_INVALID if it does not fit. */
int sh_quote(const char *s, char *buf, size_t len) __attribute__((warn_unused_result));

#endif
