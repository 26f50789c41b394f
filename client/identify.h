/* Who a device is, read over its connection before anything is written to
 * it: push and devices resolve share this judgement. The ftd shell: the
 * UUID and Model lines of the FTD CLI's "show version" (an FMC's CLI prints
 * them too, its Model naming a Management Center); the direct shell: an
 * identity file the operator names, else the subject CN of the certificate
 * the device holds in DEVICE_DIR/<CA ID>/sftunnel-cert.pem. */
#ifndef SFTCA_IDENTIFY_H
#define SFTCA_IDENTIFY_H

#include "devconn.h"
#include "msg.h"

enum device_kind {
	DEVICE_KIND_UNKNOWN = 0, /* no Model line (direct shell, no identity file Model) */
	DEVICE_KIND_FTD,         /* a Model that is not a Management Center */
	DEVICE_KIND_FMC,         /* "... Management Center ...": the FMC or its HA peer */
};

struct identify_opts {
	const char *ca_id;         /* the FMC's UUID: the device's directory, and the FMC's row */
	const char *device_dir;    /* peers directory on the device (/var/sf/peers) */
	const char *identity_file; /* direct shell: read this file instead of the certificate */
};

struct identity {
	char uuid[40];             /* "" when it could not be read: why says why */
	enum device_kind kind;
	char model[128];           /* as the device printed it ("" when none) */
	struct sftca_msg why;
};

/* Read the identity of the device on c. 0 (id filled: a UUID, or why it
 * has none), or -1 when the connection failed (m says how). */
int identify_read(struct devconn *c, enum device_shell shell, const struct identify_opts *o,
		  struct identity *id, struct sftca_msg *m) __attribute__((warn_unused_result));

/* Why the identified device is not a managed device to give certificates
 * to (it is the FMC itself: its UUID is the CA id; or an FMC, an HA peer),
 * in m; 0 when it is one. ca_id may be NULL (not known). */
int identify_not_a_peer(const struct identity *id, const char *ca_id, struct sftca_msg *m);

/* Who the FMC on c is: the ftd shell as identify_read (an FMC's CLI prints
 * its UUID and a Management Center model); direct: the identity file when
 * given, else the CN of its InternalCA certificate (the CA's CN is the
 * FMC's UUID). Returns as identify_read. */
#define IDENTIFY_FMC_CA_CERT "/etc/sf/ca_root/cacert.pem"
int identify_fmc_read(struct devconn *c, enum device_shell shell, const char *identity_file,
		      struct identity *id, struct sftca_msg *m) __attribute__((warn_unused_result));

#endif
