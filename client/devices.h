/* devices.csv, the vendor's device list (DESIGN.md 1 and 6):
 *   device_name,ip,admin_username,admin_password[,uuid,port,shell,tunnel_port]
 * with an optional header row naming the columns (then in any order), read
 * with libcsv: quoted fields, commas and quotes in passwords, CRLF line
 * ends and a UTF-8 BOM are fine. Empty lines are skipped. */
#ifndef SFTCA_DEVICES_H
#define SFTCA_DEVICES_H

#include <stddef.h>

enum device_shell {
	SHELL_DEFAULT = 0, /* not given in the row: the caller's choice applies */
	SHELL_DIRECT,      /* SFTP + exec (lab hosts, jump hosts, tests) */
	SHELL_FTD,         /* the FTD CLI: ">", expert, sudo su, then commands */
};

struct device {
	char name[128];
	char ip[64];            /* address or host name, as written */
	char user[64];
	char *password;         /* secret: wiped by devices_free(); may be "" */
	size_t password_len;
	char uuid[40];          /* "" when the row has none */
	int port;               /* SSH, default 22 */
	enum device_shell shell;
	int tunnel_port;        /* sftunnel, default 8305 */
	int line;               /* line number in the file, for messages */
};

struct device_list {
	struct device *v;
	size_t n;
};

/* Parse a devices.csv file. Every problem is reported as
 * "FILE line N: what is wrong" and makes the whole file fail
 * (SFTCA_ERR_INVALID): a half-read device list is not pushed to. Warns when
 * the file is readable by group or others (it holds passwords). */
int devices_load(const char *path, struct device_list *out) __attribute__((warn_unused_result));
/* Same from memory; name is used in messages. */
int devices_parse(const char *name, const char *text, size_t len, struct device_list *out)
	__attribute__((warn_unused_result));
/* The devices.csv text (as devices_parse reads it, n devices) again, with
 * the uuid column of the k-th device set to uuids[k] (NULL: as it was),
 * into *out (free with secret_free(*out, *outlen)). Every other field
 * stays byte for byte (quoted with libcsv where it must be); the output
 * has a header row (the input's, or one naming the vendor's columns) and a
 * file without a uuid column gains one, after the others. */
int devices_rewrite(const char *name, const char *text, size_t len, const char *const *uuids,
		    size_t n, char **out, size_t *outlen) __attribute__((warn_unused_result));
/* Wipes the passwords. */
void devices_free(struct device_list *l);
const char *device_shell_name(enum device_shell s);

#endif
