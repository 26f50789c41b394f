#include "identify.h"

#include "devparse.h"
#include "layout.h"
#include "x509util.h"

#include <stdio.h>
#include <string.h>

#define MANAGEMENT_CENTER "Management Center"

static enum device_kind kind_of(const char *model)
{
	if (model[0] == '\0')
		return DEVICE_KIND_UNKNOWN;
	return strstr(model, MANAGEMENT_CENTER) ? DEVICE_KIND_FMC : DEVICE_KIND_FTD;
}

/* Print a file of the device (cmd reads it); status 3 when it is not there. */
static int read_remote(struct devconn *c, const char *qpath, char *out, size_t outlen,
		       int *missing, struct sftca_msg *m)
{
	char cmd[1200];
	int status;

	snprintf(cmd, sizeof(cmd), "cat %s 2>/dev/null || exit 3", qpath);
	if (devconn_run(c, cmd, out, outlen, &status, m) != 0)
		return -1;
	*missing = status != 0;
	return 0;
}

/* The operator's identity file on the device (format: devparse.h). */
static int from_file(struct devconn *c, const char *path, struct identity *id, struct sftca_msg *m)
{
	char qpath[1100], out[4096];
	int missing;

	if (sh_quote(path, qpath, sizeof(qpath)) != 0) {
		msg_set(&id->why, "--identity-file: the path is too long");
		return 0;
	}
	if (read_remote(c, qpath, out, sizeof(out), &missing, m) != 0)
		return -1;
	if (missing)
		msg_set(&id->why, "it has no identity file %s", qpath);
	else if (shell_parse_identity_file(out, id->uuid, sizeof(id->uuid), id->model,
					   sizeof(id->model)) != 0)
		msg_set(&id->why, "its identity file %s names no UUID (a line 'UUID : <uuid>', or "
			"the UUID alone on the first line)", qpath);
	id->kind = kind_of(id->model);
	return 0;
}

/* The subject CN of the first certificate in the device's file qpath
 * (quoted for sh). */
static int cn_of(struct devconn *c, const char *qpath, struct identity *id, struct sftca_msg *m)
{
	STACK_OF(X509) *certs = NULL;
	char out[16384];
	int missing;

	if (read_remote(c, qpath, out, sizeof(out), &missing, m) != 0)
		return -1;
	if (missing)
		msg_set(&id->why, "it holds no %s", qpath);
	else if (pem_parse_certs(out, strlen(out), &certs) != 0 || sk_X509_num(certs) < 1 ||
		 x509_name_cn(X509_get_subject_name(sk_X509_value(certs, 0)), id->uuid,
			      sizeof(id->uuid)) != 0) {
		id->uuid[0] = '\0';
		msg_set(&id->why, "its %s has no certificate with a CN", qpath);
	}
	sk_X509_pop_free(certs, X509_free);
	return 0;
}

/* The subject CN of the certificate the device holds for this FMC. */
static int from_cert(struct devconn *c, const struct identify_opts *o, struct identity *id,
		     struct sftca_msg *m)
{
	char dir[600], qdir[700], qpath[720];

	if (o->ca_id == NULL || o->device_dir == NULL) {
		msg_set(&id->why, "direct shell: --ca ID names the directory whose certificate says "
			"who the device is (or give --identity-file)");
		return 0;
	}
	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", o->device_dir, o->ca_id) >= sizeof(dir) ||
	    sh_quote(dir, qdir, sizeof(qdir)) != 0) {
		msg_set(&id->why, "device directory too long");
		return 0;
	}
	snprintf(qpath, sizeof(qpath), "%s/" LAYOUT_CERT, qdir);
	return cn_of(c, qpath, id, m);
}

int identify_fmc_read(struct devconn *c, enum device_shell shell, const char *identity_file,
		      struct identity *id, struct sftca_msg *m)
{
	const struct identify_opts io = { NULL, NULL, identity_file };

	if (shell == SHELL_FTD || identity_file)
		return identify_read(c, shell, &io, id, m);
	memset(id, 0, sizeof(*id));
	return cn_of(c, "'" IDENTIFY_FMC_CA_CERT "'", id, m);
}

int identify_read(struct devconn *c, enum device_shell shell, const struct identify_opts *o,
		  struct identity *id, struct sftca_msg *m)
{
	memset(id, 0, sizeof(*id));
	if (shell == SHELL_FTD) {
		snprintf(id->uuid, sizeof(id->uuid), "%s", devconn_version_uuid(c));
		snprintf(id->model, sizeof(id->model), "%s", devconn_version_model(c));
		id->kind = kind_of(id->model);
		if (id->uuid[0] == '\0')
			msg_set(&id->why, "'show version' printed no UUID line");
		return 0;
	}
	if (o->identity_file)
		return from_file(c, o->identity_file, id, m);
	return from_cert(c, o, id, m);
}

int identify_not_a_peer(const struct identity *id, const char *ca_id, struct sftca_msg *m)
{
	if (id->uuid[0] && ca_id && strcmp(id->uuid, ca_id) == 0) {
		msg_set(m, "this is the FMC (its UUID is the CA id), not a device: nothing to push");
		return -1;
	}
	if (id->kind == DEVICE_KIND_FMC) {
		msg_set(m, "an FMC (HA peer; its model is \"%s\"), not a managed device: "
			"certificates are not copied", id->model);
		return -1;
	}
	return 0;
}
