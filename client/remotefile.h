/* Replacing files on a device over one devconn, shared by push (a device's
 * peer directory) and fmc commit (files all over an FMC): each new file is
 * uploaded beside its target (.NAME.sftca-tmp, mode 0600), its hash checked
 * there, then one shell command gives the uploads their mode and owner,
 * keeps every old file as NAME.backup.<stamp> and renames the uploads into
 * place one after the other, immune to the connection dropping half-way. */
#ifndef SFTCA_REMOTEFILE_H
#define SFTCA_REMOTEFILE_H

#include "devconn.h"
#include "devparse.h"
#include "msg.h"

#include <stddef.h>

struct rfile {
	const char *path;          /* absolute path on the device */
	const void *data;
	size_t len;
	char sha[65];              /* sha256 of data, lowercase hex */
	struct shell_stat want;    /* mode (and, when present, owner) to give it */
};

/* The temporary path beside f->path; 0, or -1 when it does not fit. */
int rfile_tmp_path(const char *path, char *buf, size_t len) __attribute__((warn_unused_result));
/* Upload every file to its temporary path (0600); 0, or why not in m
 * ("upload of NAME: ..."). */
int rfile_upload(struct devconn *c, const struct rfile *f, size_t n, struct sftca_msg *m)
	__attribute__((warn_unused_result));
/* The uploads hold what was sent; 0, or -1 with m naming the damaged one. */
int rfile_check(struct devconn *c, const struct rfile *f, size_t n, struct sftca_msg *m)
	__attribute__((warn_unused_result));
/* Modes and owners, backups and renames in one command; mark (shell text
 * starting with " && ", or "") runs after the backups, before the first
 * rename. 0, or -1 with m saying why (nothing replaced unless the renames
 * started). */
int rfile_replace(struct devconn *c, const struct rfile *f, size_t n, const char *stamp,
		  const char *mark, struct sftca_msg *m) __attribute__((warn_unused_result));
/* Remove the temporary files (after a failure); best effort. */
void rfile_cleanup(struct devconn *c, const struct rfile *f, size_t n);

#endif
