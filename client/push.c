#include "push.h"

#include "devparse.h"
#include "errors.h"
#include "fileio.h"
#include "identify.h"
#include "layout.h"
#include "log.h"
#include "peerfiles.h"
#include "remotefile.h"
#include "textclean.h"
#include "trust.h"
#include "x509util.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>

enum { F_BUNDLE, F_CERT, F_KEY, NFILES };

static const char *const remote_name[NFILES] = { LAYOUT_BUNDLE, LAYOUT_CERT, LAYOUT_KEY };
/* A file new on the device takes the mode and owner of the first of its
 * siblings there (follow); new_mode only where there is none. */
static const unsigned new_mode[NFILES] = { 0644, 0644, 0600 };
static const int follow[NFILES][2] = { { F_CERT, F_KEY }, { F_BUNDLE, F_KEY }, { F_CERT, F_BUNDLE } };
/* Left on the device from replacing the files until sftunnel restarted:
 * a push killed in between still restarts on the rerun, which finds the
 * files already identical. */
#define PENDING ".sftca-restart-pending"
#define PENDING_LINE "SFTCA-RESTART-PENDING"

struct local_files {
	char *data[NFILES];
	size_t len[NFILES];
	char sha[NFILES][65];
	int key_made;               /* sftca issue made this key (LAYOUT_KEY_MADE) */
};

static void fail(struct push_report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct push_report *rep, const char *fmt, ...)
{
	va_list ap;

	char raw[sizeof(rep->msg.text)];

	rep->result = PUSH_FAILED;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* Device text (command output, server messages) is among it. */
	text_escape(raw, rep->msg.text, sizeof(rep->msg.text));
}

static void local_free(struct local_files *lf)
{
	for (int i = 0; i < NFILES; i++) {
		if (lf->data[i])
			OPENSSL_cleanse(lf->data[i], lf->len[i]);
		free(lf->data[i]);
	}
}

/* 1 when the record beside the pair says sftca issue made the key whose
 * file hashes to sha (a new key: --rekey, or one that was missing). */
static int key_made_by_issue(const char *dir, const char *sha)
{
	char path[4300], *rec = NULL;
	size_t len = 0;
	int made;

	/* No record is the usual case (the key was re-certified): not an error. */
	if (layout_file(dir, LAYOUT_KEY_MADE, path, sizeof(path)) != 0 || access(path, F_OK) != 0 ||
	    file_read_all(path, 4096, &rec, &len) != 0)
		return 0;
	made = len >= 64 && strncmp(rec, sha, 64) == 0;
	free(rec);
	return made;
}

/* Read the three files for a peer and make sure they are worth pushing:
 * the judgement of sftca verify (peerfiles.c), so that what verify reports
 * bad (a wrong pair, CN or chain, expired, revoked) never leaves the FMC. */
static int local_load(const struct push_opts *o, const char *uuid, struct local_files *lf,
		      struct push_report *rep)
{
	char dir[4200], path[NFILES][4300];
	struct layout_target t = { .self = 0 };
	struct peerfiles_policy pol = { .chain = 1, .renew_days = -1, .now = time(NULL) };
	struct peerfiles_result res;
	struct sftca_msg m = { { 0 } };
	struct trust *trust = NULL;
	int r = SFTCA_ERR_INVALID;

	if (layout_check_peer(o->root, uuid, &m) != 0) {
		fail(rep, "%s", m.text);
		goto out;
	}
	snprintf(t.uuid, sizeof(t.uuid), "%s", uuid);
	if (layout_ca_root(o->root, dir, sizeof(dir)) != 0 ||
	    layout_file(dir, LAYOUT_BUNDLE, path[F_BUNDLE], sizeof(path[0])) != 0 ||
	    layout_peer_pair_dir(o->root, uuid, t.dir, sizeof(t.dir)) != 0 ||
	    layout_file(t.dir, LAYOUT_CERT, path[F_CERT], sizeof(path[0])) != 0 ||
	    layout_file(t.dir, LAYOUT_KEY, path[F_KEY], sizeof(path[0])) != 0) {
		fail(rep, "the local paths under %s are too long", o->root);
		goto out;
	}
	for (int i = 0; i < NFILES; i++) {
		if (file_read_all(path[i], 1 << 20, &lf->data[i], &lf->len[i]) != 0) {
			fail(rep, "local file %s cannot be read (run sftca issue first)", path[i]);
			goto out;
		}
		sha256_hex(lf->data[i], lf->len[i], lf->sha[i]);
	}
	lf->key_made = key_made_by_issue(t.dir, lf->sha[F_KEY]);
	if ((trust = trust_load(o->root, &m)) == NULL) {
		fail(rep, "%s", m.text);
		goto out;
	}
	pol.trust = trust;
	switch (peerfiles_check(&pol, &t, &res)) {
	case PF_OK:
		r = 0;
		break;
	case PF_REVOKED:
		fail(rep, "local certificate %s (serial %s) is revoked by %s/etc/sf/ca_root/" LAYOUT_CRL
		     ": not pushed (sftca issue gives the peer a new key and certificate)",
		     path[F_CERT], res.serial, o->root);
		break;
	default:
		fail(rep, "local pair in %s not pushed: %s (run sftca issue)", t.dir, res.why.text);
	}
out:
	trust_free(trust);
	return r;
}

/* Who the device is, before anything is written to it (identify.h). It
 * must be uuid: a swapped address or UUID in devices.csv would otherwise
 * give one device another's key. uuid "": the device's own UUID, if the FMC
 * tree has that peer, into rep->uuid. An FMC (itself, an HA peer) is
 * skipped. */
static int identify(struct devconn *c, const struct push_opts *o, enum device_shell shell,
		    const char *uuid, const char *source, struct push_report *rep)
{
	const struct identify_opts io = { o->ca_id, o->device_dir, o->identity_file };
	struct sftca_msg err = { { 0 } };
	struct identity id;
	char peer[4200];
	struct stat st;

	if (identify_read(c, shell, &io, &id, &err) != 0) {
		fail(rep, "%s", err.text);
		return -1;
	}
	if (id.uuid[0] && uuid[0] && strcmp(id.uuid, uuid) != 0) {
		fail(rep, "identity mismatch: the device says %s, %s says %s", id.uuid, source, uuid);
		rep->identity_mismatch = 1;
		return -1;
	}
	if (identify_not_a_peer(&id, o->ca_id, &err) != 0) {
		fail(rep, "%s", err.text);
		rep->result = PUSH_SKIPPED;
		return -1;
	}
	if (uuid[0] == '\0' && id.uuid[0] == '\0') {
		fail(rep, "identity not established (%s): no uuid in devices.csv, nothing written "
		     "(sftca devices resolve says the same per device)", id.why.text);
		return -1;
	}
	if (uuid[0] == '\0') {
		snprintf(rep->uuid, sizeof(rep->uuid), "%s", id.uuid);
		if ((size_t)snprintf(peer, sizeof(peer), "%s/var/sf/peers/%s", o->root, id.uuid) >=
			    sizeof(peer) ||
		    stat(peer, &st) != 0 || !S_ISDIR(st.st_mode)) {
			fail(rep, "unknown device: %s has no peer directory under %s: nothing written",
			     id.uuid, o->root);
			rep->unknown_device = 1;
			return -1;
		}
		return 0;
	}
	snprintf(rep->uuid, sizeof(rep->uuid), "%s", uuid);
	if (id.uuid[0])
		return 0;
	if (!o->trust_csv_identity) {
		fail(rep, "identity not established (%s): nothing written (--trust-csv-identity "
		     "pushes on devices.csv's word)", id.why.text);
		return -1;
	}
	rep->identity_trusted = 1;
	return 0;
}

/* A private key goes only to a device whose identity was proven, and only
 * when the device has none or sftca issue made the FMC's (--rekey): a key
 * that differs on the device alone may be the device's own pair or a sign
 * that the row is wrong, and overwriting it would break or leak. Nothing
 * at all is written then: the certificate belongs with the key. */
static int key_may_travel(const struct local_files *lf, int device_has_key, const char *uuid,
			  struct push_report *rep)
{
	if (device_has_key && !lf->key_made) {
		fail(rep, "key mismatch: the device's " LAYOUT_KEY " is not the key the FMC holds for %s, "
		     "and sftca issue did not make that one (--rekey): no key sent, nothing written "
		     "(check the device; sftca issue --rekey --peer %s gives it a new key to push)",
		     uuid, uuid);
		return -1;
	}
	if (rep->identity_trusted) {
		fail(rep, "the key must be sent (%s), but a private key goes only to a device whose "
		     "identity was proven (not on --trust-csv-identity): nothing written",
		     device_has_key ? "sftca issue made a new one" : "the device has none");
		return -1;
	}
	return 0;
}

/* sha256sum, mode and owner of the three files in dir (quoted); missing
 * files get "" and are not present in st. *pending: an earlier push
 * replaced files but did not restart. */
static int remote_sums(struct devconn *c, const char *qdir, char sums[NFILES][65],
		       struct shell_stat st[NFILES], int *pending, struct push_report *rep)
{
	struct sftca_msg err = { { 0 } };
	char cmd[1024], out[2048];
	int status;

	snprintf(cmd, sizeof(cmd),
		 "cd %s 2>/dev/null || exit 3; for f in %s %s %s; do [ -f \"$f\" ] && "
		 "sha256sum \"$f\" && stat -c '%s' \"$f\"; done; "
		 "[ -e " PENDING " ] && echo " PENDING_LINE "; exit 0",
		 qdir, remote_name[0], remote_name[1], remote_name[2], SHELL_STAT_FORMAT);
	if (devconn_run(c, cmd, out, sizeof(out), &status, &err) != 0) {
		fail(rep, "%s", err.text);
		return -1;
	}
	if (status == 3) {
		fail(rep, "no directory %s on the device (is the FMC UUID right?)", qdir);
		return -1;
	}
	if (status != 0) {
		fail(rep, "listing %s failed (status %d): %.200s", qdir, status, out);
		return -1;
	}
	shell_parse_sums(out, remote_name, NFILES, sums);
	shell_parse_stats(out, remote_name, NFILES, st);
	*pending = strstr(out, PENDING_LINE) != NULL;
	return 0;
}

/* What each file is to be on the device: as it was (mode and owner), else
 * as the first of its siblings there, else new_mode with the owner the
 * upload gave it (want[i].present 0). */
static void target_attrs(const struct shell_stat have[NFILES], struct shell_stat want[NFILES])
{
	for (int i = 0; i < NFILES; i++) {
		want[i] = have[i].present	       ? have[i]
			  : have[follow[i][0]].present ? have[follow[i][0]]
			  : have[follow[i][1]].present ? have[follow[i][1]]
						       : (struct shell_stat){ .mode = new_mode[i] };
	}
}

/* The changed files as rfiles: their device paths under dir, the local
 * bytes and the mode and owner they are to have. n returned. */
static size_t changed_rfiles(const char *dir, const int *changed, const struct local_files *lf,
			     const struct shell_stat want[NFILES], char paths[NFILES][700],
			     struct rfile rf[NFILES])
{
	size_t n = 0;

	for (int i = 0; i < NFILES; i++) {
		if (!changed[i])
			continue;
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", dir, remote_name[i]);
		rf[n] = (struct rfile){ .path = paths[i], .data = lf->data[i], .len = lf->len[i],
					.want = want[i] };
		memcpy(rf[n].sha, lf->sha[i], sizeof(rf[n].sha));
		n++;
	}
	return n;
}

/* The row's local files are not there to push (rep says why): an FMC HA
 * peer's row (the vendor's list names the secondary FMC) has none, and is
 * to be skipped, not FAILED. Ask the device; whatever else it says, or when
 * it cannot be reached, the local reason stands. Nothing is written. */
static void skip_if_fmc(const struct device *d, enum device_shell shell,
			const struct push_opts *o, struct push_report *rep)
{
	const struct identify_opts io = { o->ca_id, o->device_dir, o->identity_file };
	struct sftca_msg err = { { 0 } };
	struct devconn *c = NULL;
	struct identity id;

	if (devconn_open(d, shell, &o->conn, &c, &err) == 0 &&
	    identify_read(c, shell, &io, &id, &err) == 0 && id.kind == DEVICE_KIND_FMC &&
	    identify_not_a_peer(&id, o->ca_id, &err) != 0) {
		fail(rep, "%s", err.text);
		rep->result = PUSH_SKIPPED;
	}
	devconn_close(c);
}

/* The files changed, space-separated, into rep->files. */
static void list_changed(struct push_report *rep, const int changed[NFILES])
{
	for (int i = 0; i < NFILES; i++)
		if (changed[i])
			snprintf(rep->files + strlen(rep->files), sizeof(rep->files) - strlen(rep->files),
				 "%s%s", rep->files[0] ? " " : "", remote_name[i]);
}

void push_device(const struct push_opts *o, const struct device *d, const char *uuid,
		 struct push_report *rep)
{
	struct local_files lf = { 0 };
	struct devconn *c = NULL;
	struct sftca_msg err = { { 0 } };
	char dir[600], qdir[700], sums[NFILES][65];
	struct shell_stat have[NFILES], want[NFILES];
	int changed[NFILES] = { 0 }, nchanged = 0, uploaded = 0, pending = 0, still;
	char rpath[NFILES][700], mark[800];
	struct rfile rf[NFILES];
	size_t nrf = 0;
	enum device_shell shell = d->shell != SHELL_DEFAULT ? d->shell : o->default_shell;

	memset(rep, 0, sizeof(*rep));
	if (uuid[0] && local_load(o, uuid, &lf, rep) != 0) {
		skip_if_fmc(d, shell, o, rep);
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/%s", o->device_dir, o->ca_id);
	if (sh_quote(dir, qdir, sizeof(qdir)) != 0) {
		fail(rep, "device directory too long");
		goto out;
	}
	if (devconn_open(d, shell, &o->conn, &c, &err) != 0) {
		fail(rep, "%s", err.text);
		goto out;
	}
	/* A row without a uuid was given one by --retry's FAILED_PUSH entry. */
	if (identify(c, o, shell, uuid, d->uuid[0] ? "devices.csv" : "FAILED_PUSH", rep) != 0)
		goto out;
	if (uuid[0] == '\0' && local_load(o, rep->uuid, &lf, rep) != 0)
		goto out;
	if (rep->identity_trusted)
		log_warn("%s %s: identity not established; trusting devices.csv's %s "
			 "(--trust-csv-identity)", d->name, d->ip, rep->uuid);
	if (remote_sums(c, qdir, sums, have, &pending, rep) != 0)
		goto out;
	target_attrs(have, want);
	/* The key travels only when it changed; identical files are left alone. */
	for (int i = 0; i < NFILES; i++)
		if ((changed[i] = strcmp(sums[i], lf.sha[i]) != 0))
			nchanged++;
	if (changed[F_KEY] && key_may_travel(&lf, sums[F_KEY][0] != '\0', rep->uuid, rep) != 0)
		goto out;
	if (o->dry_run) {
		/* Everything a real push checks before its first write has passed. */
		rep->result = nchanged ? PUSH_UPDATED : PUSH_UNCHANGED;
		list_changed(rep, changed);
		rep->would_restart = !o->no_restart && (nchanged || o->restart_unchanged || pending);
		goto out;
	}
	if (nchanged == 0) {
		rep->result = PUSH_UNCHANGED;
		goto restart;
	}
	nrf = changed_rfiles(dir, changed, &lf, want, rpath, rf);
	uploaded = 1;
	if (rfile_upload(c, rf, nrf, &err) != 0) {
		fail(rep, "%s", err.text);
		goto out;
	}
	/* What arrived is what was sent, before anything is replaced; the old
	 * files are kept, and the pending mark set before the first rename. */
	snprintf(mark, sizeof(mark), "%s%s%s", o->no_restart ? "" : " && : > ", o->no_restart ? "" : qdir,
		 o->no_restart ? "" : "/" PENDING);
	if (rfile_check(c, rf, nrf, &err) != 0 || rfile_replace(c, rf, nrf, o->stamp, mark, &err) != 0) {
		fail(rep, "%s", err.text);
		goto out;
	}
	uploaded = 0;
	if (remote_sums(c, qdir, sums, have, &still, rep) != 0)
		goto out;
	for (int i = 0; i < NFILES; i++) {
		if (strcmp(sums[i], lf.sha[i]) != 0) {
			fail(rep, "%s does not hold what was sent after the rename", remote_name[i]);
			goto out;
		}
		if (changed[i] && (have[i].mode != want[i].mode ||
				   (want[i].present && (have[i].uid != want[i].uid || have[i].gid != want[i].gid)))) {
			fail(rep, "%s is mode %o owner %lu:%lu after the rename, not %o %lu:%lu",
			     remote_name[i], have[i].mode, have[i].uid, have[i].gid, want[i].mode,
			     want[i].uid, want[i].gid);
			goto out;
		}
	}
	rep->result = PUSH_UPDATED;
	list_changed(rep, changed);
restart:
	if (!o->no_restart && (rep->result == PUSH_UPDATED || o->restart_unchanged || pending)) {
		char out[1024], cmd[800];
		int status;
		if (devconn_run(c, o->restart_cmd, out, sizeof(out), &status, &err) != 0) {
			fail(rep, "files in place; restarting sftunnel failed: %s", err.text);
			goto out;
		}
		if (status != 0) {
			fail(rep, "files in place; '%s' exited %d: %.200s", o->restart_cmd, status, out);
			goto out;
		}
		rep->restarted = 1;
		snprintf(cmd, sizeof(cmd), "rm -f %s/" PENDING, qdir);
		if (devconn_run(c, cmd, out, sizeof(out), &status, &err) != 0 || status != 0)
			log_warn("%s: %s/" PENDING " not removed: the next push restarts sftunnel again",
				 d->name, dir);
	}
out:
	if (c && uploaded)
		rfile_cleanup(c, rf, nrf);
	devconn_close(c);
	local_free(&lf);
}
