/* Pushing renewed files to one device: compare, upload beside, check the
 * bytes, back up and rename in one step, restart sftunnel. */
#ifndef SFTCA_PUSH_H
#define SFTCA_PUSH_H

#include "devconn.h"
#include "devices.h"
#include "msg.h"

#define PUSH_DEFAULT_RESTART "pmtool restartbyid sftunnel"
#define PUSH_DEFAULT_DEVICE_DIR "/var/sf/peers"

struct push_opts {
	const char *ca_id;          /* the FMC's UUID: the device keeps its files under it */
	const char *root;           /* the FMC tree */
	const char *device_dir;     /* peers directory on the device (/var/sf/peers) */
	struct devconn_opts conn;
	enum device_shell default_shell;
	const char *restart_cmd;
	int no_restart;
	int trust_csv_identity;     /* push where the device's identity cannot be read */
	const char *identity_file;  /* direct shell: the device's identity file (identify.h) */
	int restart_unchanged;      /* restart even when nothing changed (a retry) */
	int dry_run;                /* log in, identify, compare: write and restart nothing */
	char stamp[32];             /* backup suffix for this run */
};

enum push_result { PUSH_UNCHANGED = 0, PUSH_UPDATED, PUSH_FAILED, PUSH_SKIPPED };

struct push_report {
	enum push_result result;
	char files[96];             /* the files replaced, space-separated */
	int restarted;
	int would_restart;          /* dry run: sftunnel would be restarted */
	int identity_mismatch;      /* the device is another row's */
	int identity_trusted;       /* pushed on devices.csv's word (--trust-csv-identity) */
	char uuid[40];              /* the UUID pushed under: the row's, or the one the device
				     * gave (uuid "": resolved on the fly); "" when unknown */
	int unknown_device;         /* resolved to a UUID the FMC tree has no peer for */
	struct sftca_msg msg;       /* why it failed (device text escaped) */
};

/* Push the files of the peer `uuid` to device d; uuid "": the UUID the
 * device gives (identify.h), if the FMC tree has that peer. Never exits
 * early on a fault without saying why in rep->msg; the device's previous
 * files stay in place unless the replacement completed. PUSH_SKIPPED: the
 * device is the FMC or an FMC HA peer (why in rep->msg). */
void push_device(const struct push_opts *o, const struct device *d, const char *uuid,
		 struct push_report *rep);

#endif
