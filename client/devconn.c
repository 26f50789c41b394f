#include "devconn.h"

#include "devparse.h"
#include "errors.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define OUT_MAX (64 * 1024)
/* Keyboard-interactive rounds answered before authentication is given up. */
#define KBDINT_MAX_ROUNDS 4

struct watchdog;

struct devconn {
	ssh_session s;
	enum device_shell shell;
	int timeout_ms;
	long long deadline;   /* now_ms() when the device is given up; 0: none */
	int deadline_s;
	const struct device *dev;
	/* direct */
	sftp_session sftp;
	struct watchdog *wd;  /* the device's deadline, for waits inside libssh */
	/* ftd: the one interactive root shell, and what it printed */
	ssh_channel sh;
	struct shellbuf out;
	char nonce[17];
	unsigned seq;
	char version_uuid[40]; /* show version's UUID; "" when it printed none */
	char version_model[128]; /* and its Model line; "" when none */
};

/* The peer went away (a dropped connection reads as silence otherwise). */
static int session_dead(ssh_session s)
{
	return !ssh_is_connected(s) || (ssh_get_status(s) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* When the current step must be over: its own timeout from now, or the
 * device's deadline if that comes first. */
static long long step_until(const struct devconn *c)
{
	long long until = now_ms() + c->timeout_ms;

	return c->deadline && c->deadline < until ? c->deadline : until;
}

/* The error for a step that ran out of time, naming which limit passed:
 * "WHAT within N sNOTE", or the device's deadline. */
static int timed_out(const struct devconn *c, struct sftca_msg *m, const char *what,
		     const char *note)
{
	if (c->deadline && now_ms() >= c->deadline - 50)
		return msg_fail(m, SFTCA_ERR_TIMEOUT,
				"%s: the device's deadline of %d s passed (--device-timeout)", what,
				c->deadline_s);
	return msg_fail(m, SFTCA_ERR_TIMEOUT, "%s within %d s%s", what, c->timeout_ms / 1000,
			note);
}

int sh_quote(const char *s, char *buf, size_t len)
{
	size_t n = 0;

	if (len < 3)
		return SFTCA_ERR_INVALID;
	buf[n++] = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			if (n + 4 >= len)
				return SFTCA_ERR_INVALID;
			memcpy(buf + n, "'\\''", 4);
			n += 4;
		} else {
			if (n + 1 >= len)
				return SFTCA_ERR_INVALID;
			buf[n++] = *s;
		}
	}
	if (n + 2 > len)
		return SFTCA_ERR_INVALID;
	buf[n++] = '\'';
	buf[n] = '\0';
	return 0;
}

/* --- host key and authentication --------------------------------------------- */

static void server_fingerprint(ssh_session s, char *fp, size_t len)
{
	ssh_key key = NULL;
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *text;

	snprintf(fp, len, "?");
	if (ssh_get_server_publickey(s, &key) == SSH_OK &&
	    ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) == 0 &&
	    (text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen)) != NULL) {
		snprintf(fp, len, "%s", text);
		ssh_string_free_char(text);
	}
	ssh_clean_pubkey_hash(&hash);
	ssh_key_free(key);
}

static int check_host_key(ssh_session s, const struct device *d, const struct devconn_opts *o,
			  struct sftca_msg *m)
{
	char fp[128];
	int r = 0;

	server_fingerprint(s, fp, sizeof(fp));
	switch (ssh_session_is_known_server(s)) {
	case SSH_KNOWN_HOSTS_OK:
		return 0;
	case SSH_KNOWN_HOSTS_CHANGED:
		return msg_fail(m, SFTCA_ERR_HOSTKEY,
				"host key CHANGED (now %s): refusing, possible man-in-the-middle; if the "
				"device was rebuilt, remove its old key from %s",
				fp, o->known_hosts);
	case SSH_KNOWN_HOSTS_OTHER:
		return msg_fail(m, SFTCA_ERR_HOSTKEY,
				"host key of another type than the one in %s (now %s): refusing",
				o->known_hosts, fp);
	case SSH_KNOWN_HOSTS_NOT_FOUND:
	case SSH_KNOWN_HOSTS_UNKNOWN:
		if (!o->accept_new)
			return msg_fail(m, SFTCA_ERR_HOSTKEY,
					"unknown host key %s: verify it and add it to %s, or pass "
					"--accept-new-host-keys",
					fp, o->known_hosts);
		if (o->known_hosts_mu)
			pthread_mutex_lock(o->known_hosts_mu);
		if (ssh_session_update_known_hosts(s) != SSH_OK)
			r = msg_fail(m, SFTCA_ERR_HOSTKEY, "cannot add the host key to %s: %s",
				     o->known_hosts, ssh_get_error(s));
		if (o->known_hosts_mu)
			pthread_mutex_unlock(o->known_hosts_mu);
		if (r == 0)
			log_warn("%s (%s): new host key %s accepted into %s", d->name, d->ip, fp,
				 o->known_hosts);
		return r;
	default:
		return msg_fail(m, SFTCA_ERR_HOSTKEY, "host key check failed: %s",
				ssh_get_error(s));
	}
}

static int authenticate(ssh_session s, const struct device *d, const struct devconn_opts *o,
			struct sftca_msg *m)
{
	int rc;

	if (o->identity) {
		ssh_key key = NULL;
		if (ssh_pki_import_privkey_file(o->identity, NULL, NULL, NULL, &key) != SSH_OK)
			return msg_fail(m, SFTCA_ERR_AUTH, "cannot read the identity %s",
					o->identity);
		rc = ssh_userauth_publickey(s, NULL, key);
		ssh_key_free(key);
		if (rc == SSH_AUTH_SUCCESS)
			return 0;
		if (d->password == NULL || d->password[0] == '\0')
			return msg_fail(m, SFTCA_ERR_AUTH,
					"public key refused for user %s", d->user);
	}
	rc = ssh_userauth_password(s, NULL, d->password ? d->password : "");
	if (rc == SSH_AUTH_SUCCESS)
		return 0;
	/* Servers that only offer keyboard-interactive ask for the same
	 * password; a server that keeps asking is given up on. */
	for (int round = 0; (rc = ssh_userauth_kbdint(s, NULL, NULL)) == SSH_AUTH_INFO; round++) {
		int n = ssh_userauth_kbdint_getnprompts(s);
		if (round == KBDINT_MAX_ROUNDS || n > 8)
			return msg_fail(m, SFTCA_ERR_AUTH,
					"authentication refused for user %s: the server asked more than "
					"%d rounds of keyboard-interactive questions",
					d->user, KBDINT_MAX_ROUNDS);
		for (int i = 0; i < n; i++)
			if (ssh_userauth_kbdint_setanswer(s, (unsigned)i, d->password ? d->password : "") < 0)
				break;
	}
	if (rc == SSH_AUTH_SUCCESS)
		return 0;
	return msg_fail(m, SFTCA_ERR_AUTH, "authentication refused for user %s", d->user);
}

/* --- ftd: the interactive root shell ------------------------------------------- */

/* Read until the buffer ends with one of the prompts (matched after trailing
 * spaces are trimmed) or holds the marker (done(c, marker position) says
 * whether what follows it is complete, when given). Returns the index of
 * the prompt matched, -2 for the marker, -1 when the channel closed, -3 when
 * the step's time or the device's deadline ran out, -4 when the device
 * printed more than SHELLBUF_MAX. */
static int ftd_expect(struct devconn *c, const char *const *prompts, int n, const char *marker,
		      int (*done)(const char *after))
{
	long long until = step_until(c);
	char tmp[4096];

	for (;;) {
		char *m;
		int i;
		if (marker && (m = shellbuf_find_marker(&c->out, marker)) != NULL) {
			if (done == NULL || done(m + strlen(marker)))
				return -2;
			c->out.scanned = (size_t)(m - c->out.buf); /* found again after the next read */
		}
		if ((i = shellbuf_prompt(&c->out, prompts, n)) >= 0)
			return i;
		if (c->out.overflow)
			return -4;
		long long left = until - now_ms();
		if (left <= 0)
			return -3;
		if (ssh_channel_is_eof(c->sh) || !ssh_channel_is_open(c->sh) || session_dead(c->s))
			return -1;
		int r = ssh_channel_read_timeout(c->sh, tmp, sizeof(tmp), 0, (int)(left > 500 ? 500 : left));
		if (r < 0) {
			OPENSSL_cleanse(tmp, sizeof(tmp));
			return -1;
		}
		shellbuf_append(&c->out, tmp, (size_t)r);
		OPENSSL_cleanse(tmp, (size_t)r);
	}
}

static int ftd_send(struct devconn *c, const char *text)
{
	size_t n = strlen(text);
	while (n > 0) {
		int w = ssh_channel_write(c->sh, text, (uint32_t)n);
		if (w <= 0)
			return SFTCA_ERR_SSH;
		text += w;
		n -= (size_t)w;
	}
	return 0;
}

/* From the restricted CLI to a root shell: "expert", "sudo su", password. */
static int ftd_become_root(struct devconn *c, struct sftca_msg *m)
{
	static const char *const cli[] = { ">" };
	static const char *const user[] = { "$" };
	static const char *const sudo[] = { "assword:", "#" };
	static const char *const root[] = { "#", "$", "assword:" };
	char line[1200];
	int r;

	if (ftd_expect(c, cli, 1, NULL, NULL) != 0)
		return msg_fail(m, SFTCA_ERR_SSH, "no FTD CLI prompt (>) after login");
	/* Who the device says it is, asked of the CLI before anything else:
	 * push compares it with devices.csv before it writes a byte. */
	shellbuf_reset(&c->out);
	if (ftd_send(c, "show version\n") != 0 || ftd_expect(c, cli, 1, NULL, NULL) != 0)
		return msg_fail(m, SFTCA_ERR_SSH, "'show version' did not give the CLI prompt back");
	if (shell_parse_version_uuid(c->out.buf ? c->out.buf : "", c->version_uuid,
				     sizeof(c->version_uuid)) != 0)
		c->version_uuid[0] = '\0';
	if (shell_parse_version_model(c->out.buf ? c->out.buf : "", c->version_model,
				      sizeof(c->version_model)) != 0)
		c->version_model[0] = '\0';
	shellbuf_reset(&c->out);
	if (ftd_send(c, "expert\n") != 0 || ftd_expect(c, user, 1, NULL, NULL) != 0)
		return msg_fail(m, SFTCA_ERR_SSH, "'expert' did not give a shell prompt");
	shellbuf_reset(&c->out);
	if (ftd_send(c, "sudo su\n") != 0 || (r = ftd_expect(c, sudo, 2, NULL, NULL)) < 0)
		return msg_fail(m, SFTCA_ERR_SSH, "'sudo su' did not answer");
	if (r == 0) {
		shellbuf_reset(&c->out);
		snprintf(line, sizeof(line), "%s\n", c->dev->password ? c->dev->password : "");
		r = ftd_send(c, line);
		OPENSSL_cleanse(line, sizeof(line));
		if (r != 0 || (r = ftd_expect(c, root, 3, NULL, NULL)) < 0)
			return msg_fail(m, SFTCA_ERR_SSH, "no answer to the sudo password");
		if (r != 0)
			return msg_fail(m, SFTCA_ERR_AUTH,
					"sudo su refused the password of user %s", c->dev->user);
	}
	/* An interactive root shell keeps a history: without this, the
	 * heredocs that carry the files (a new private key among them) would be
	 * saved in root's .bash_history on the device. Sent to the shell
	 * itself, not through ftd_run(), whose subshell would forget it. */
	shellbuf_reset(&c->out);
	if (ftd_send(c, "unset HISTFILE; set +o history\n") != 0 ||
	    ftd_expect(c, root, 1, NULL, NULL) != 0)
		return msg_fail(m, SFTCA_ERR_SSH,
				"the root shell did not come back after turning its history off");
	shellbuf_reset(&c->out);
	return 0;
}

static int ftd_run(struct devconn *c, const char *cmd, char *out, size_t outlen, int *status,
		   struct sftca_msg *m)
{
	char begin[64], end[64], head[96], tail[96];
	int r;

	/* The output is what lies between two marker lines. The line sent
	 * spells each marker with '' inside, so the terminal's echo of it (and
	 * prompts, which land outside) never looks like a marker. The command
	 * runs in a subshell: an "exit" in it must not end the root shell. */
	c->seq++;
	snprintf(begin, sizeof(begin), "__SFTCA_%s_%u_B__\n", c->nonce, c->seq);
	snprintf(end, sizeof(end), "__SFTCA_%s_%u_E_", c->nonce, c->seq);
	snprintf(head, sizeof(head), "echo __SFTCA_%s_%u_''B__; ( ", c->nonce, c->seq);
	snprintf(tail, sizeof(tail), "\n) 2>&1; echo __SFTCA_%s_%u_''E_$?__\n", c->nonce, c->seq);
	shellbuf_reset(&c->out);
	if (ftd_send(c, head) != 0 || ftd_send(c, cmd) != 0 || ftd_send(c, tail) != 0)
		return msg_fail(m, SFTCA_ERR_SSH, "the device shell closed");
	/* One bound for the whole command, status digits included: a device
	 * that drips bytes after the marker does not hold the push. */
	switch ((r = ftd_expect(c, NULL, 0, end, shell_status_complete))) {
	case -2:
		break;
	case -3:
		return timed_out(c, m, "no complete answer from the device shell", "");
	case -4:
		return msg_fail(m, SFTCA_ERR_LIMIT,
				"the device shell printed more than %d KiB for one command: given up",
				SHELLBUF_MAX / 1024);
	default:
		return msg_fail(m, SFTCA_ERR_SSH, "the device shell closed");
	}
	if (shell_extract(c->out.buf, begin, end, out, outlen, status) != 0)
		return msg_fail(m, SFTCA_ERR_SSH, "the device shell mangled the command");
	shellbuf_reset(&c->out);
	return 0;
}

static int ftd_put(struct devconn *c, const char *path, const void *data, size_t len,
		   unsigned mode, struct sftca_msg *m)
{
	char qpath[1100], head[2400], out[256];
	size_t b64cap = 4 * ((len + 2) / 3) + len / 48 + 16, off = 0;
	char *cmd = NULL, *b64 = malloc(b64cap);
	int status = -1, r;

	if (b64 == NULL || sh_quote(path, qpath, sizeof(qpath)) != 0) {
		free(b64);
		return msg_fail(m, SFTCA_ERR_INVALID, "path too long");
	}
	/* 48 input bytes = 64 characters per line: short lines for the tty. */
	for (size_t i = 0; i < len; i += 48) {
		size_t chunk = len - i < 48 ? len - i : 48;
		off += (size_t)EVP_EncodeBlock((unsigned char *)b64 + off,
					       (const unsigned char *)data + i, (int)chunk);
		b64[off++] = '\n';
	}
	b64[off] = '\0';
	/* chmod only after a write that worked: the status is the write's, and
	 * nothing that is in the way (not sftca's) changes its mode. */
	snprintf(head, sizeof(head), "umask 077; base64 -d > %s <<'SFTCA_EOF_%s' && chmod %o %s\n",
		 qpath, c->nonce, mode, qpath);
	if ((cmd = malloc(strlen(head) + off + 64)) == NULL) {
		free(b64);
		return msg_fail(m, SFTCA_ERR_NOMEM, "out of memory");
	}
	snprintf(cmd, strlen(head) + off + 64, "%s%sSFTCA_EOF_%s", head, b64, c->nonce);
	r = ftd_run(c, cmd, out, sizeof(out), &status, m);
	OPENSSL_cleanse(b64, off); /* may be a private key */
	OPENSSL_cleanse(cmd, strlen(cmd));
	free(b64);
	free(cmd);
	if (r == 0 && status != 0)
		r = msg_fail(m, SFTCA_ERR_IO, "writing %s failed (status %d): %.120s", path,
			     status, out);
	return r;
}

/* --- direct: exec channels and SFTP -------------------------------------------- */

static int direct_run(struct devconn *c, const char *cmd, char *out, size_t outlen, int *status,
		      struct sftca_msg *m)
{
	ssh_channel ch = ssh_channel_new(c->s);
	long long until = step_until(c);
	size_t n = 0;
	char tmp[4096];
	int r = 0;

	if (ch == NULL || ssh_channel_open_session(ch) != SSH_OK ||
	    ssh_channel_request_exec(ch, cmd) != SSH_OK) {
		r = msg_fail(m, SFTCA_ERR_SSH, "cannot run a command: %s", ssh_get_error(c->s));
		goto out;
	}
	/* Commands take no input: say so at once, nothing may wait for it. */
	ssh_channel_send_eof(ch);
	for (;;) {
		long long left = until - now_ms();
		int got;
		if (left <= 0) {
			r = timed_out(c, m, "command did not finish", "");
			goto out;
		}
		got = ssh_channel_read_timeout(ch, tmp, sizeof(tmp), 0, (int)(left > 500 ? 500 : left));
		if (got < 0 || (got == 0 && session_dead(c->s))) {
			r = msg_fail(m, SFTCA_ERR_SSH, "connection lost: %s", ssh_get_error(c->s));
			goto out;
		}
		if (got > 0)
			shell_out_append(out, outlen, &n, tmp, (size_t)got);
		/* stderr is drained so it can never fill the window. */
		while (ssh_channel_read_timeout(ch, tmp, sizeof(tmp), 1, 0) > 0)
			;
		if (got == 0 && ssh_channel_is_eof(ch))
			break;
	}
	if (outlen)
		out[n] = '\0';
	*status = ssh_channel_get_exit_status(ch);
out:
	if (ch) {
		ssh_channel_close(ch);
		ssh_channel_free(ch);
	}
	return r;
}

/* A hard deadline for calls that bring none of their own: libssh 0.10's
 * SFTP client waits for a reply for ever (a read that times out is read
 * again). When the deadline passes, the socket is shut down under libssh,
 * whose pending read then fails. */
struct watchdog {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int fd, done, fired;
	struct timespec until; /* CLOCK_MONOTONIC */
};

static void *watchdog_main(void *arg)
{
	struct watchdog *w = arg;

	pthread_mutex_lock(&w->mu);
	while (!w->done)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &w->until) == ETIMEDOUT && !w->done) {
			shutdown(w->fd, SHUT_RDWR);
			w->fired = 1;
			break;
		}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* 0 when armed; otherwise the caller goes on without a deadline. */
static int watchdog_arm(struct watchdog *w, int fd, int ms)
{
	pthread_condattr_t ca;

	memset(w, 0, sizeof(*w));
	w->fd = fd;
	clock_gettime(CLOCK_MONOTONIC, &w->until);
	w->until.tv_sec += ms / 1000;
	w->until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (w->until.tv_nsec >= 1000000000) {
		w->until.tv_sec++;
		w->until.tv_nsec -= 1000000000;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (fd < 0 || pthread_create(&w->thread, NULL, watchdog_main, w) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		return -1;
	}
	return 0;
}

/* Whether the deadline passed (the connection is then unusable). */
static int watchdog_disarm(struct watchdog *w)
{
	int fired;

	pthread_mutex_lock(&w->mu);
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	fired = w->fired;
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	return fired;
}

static int sftp_put(struct devconn *c, const char *path, const void *data, size_t len,
		    unsigned mode, struct sftca_msg *m)
{
	const unsigned char *p = data;
	sftp_file f;
	int r = 0;

	if (c->sftp == NULL) {
		if ((c->sftp = sftp_new(c->s)) == NULL || sftp_init(c->sftp) != SSH_OK) {
			if (c->sftp)
				sftp_free(c->sftp);
			c->sftp = NULL;
			return msg_fail(m, SFTCA_ERR_SSH, "SFTP not available: %s",
					ssh_get_error(c->s));
		}
	}
	if ((f = sftp_open(c->sftp, path, O_WRONLY | O_CREAT | O_TRUNC, mode)) == NULL)
		return msg_fail(m, SFTCA_ERR_IO, "cannot create %s (SFTP error %d)", path,
				sftp_get_error(c->sftp));
	while (len > 0) {
		ssize_t w = sftp_write(f, p, len > 32768 ? 32768 : len);
		if (w <= 0) {
			r = msg_fail(m, SFTCA_ERR_IO, "writing %s was interrupted: %s", path,
				     ssh_get_error(c->s));
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	if (r == 0 && sftp_extension_supported(c->sftp, "fsync@openssh.com", "1") &&
	    sftp_fsync(f) != 0)
		r = msg_fail(m, SFTCA_ERR_IO, "fsync of %s failed", path);
	if (sftp_close(f) != 0 && r == 0)
		r = msg_fail(m, SFTCA_ERR_IO, "closing %s failed", path);
	/* The server's umask shaped the create mode: set it as asked. */
	if (r == 0 && sftp_chmod(c->sftp, path, mode) != 0)
		r = msg_fail(m, SFTCA_ERR_IO, "chmod of %s failed", path);
	return r;
}

static int direct_put(struct devconn *c, const char *path, const void *data, size_t len,
		      unsigned mode, struct sftca_msg *m)
{
	struct watchdog w;
	long long left = step_until(c) - now_ms();
	int armed = left > 0 && watchdog_arm(&w, ssh_get_fd(c->s), (int)left) == 0;
	int r = left > 0 ? sftp_put(c, path, data, len, mode, m) : SFTCA_ERR_TIMEOUT;

	if (left <= 0 || (armed && watchdog_disarm(&w)))
		r = timed_out(c, m, "no answer from the SFTP server", " (connection dropped)");
	return r;
}

/* --- the interface ----------------------------------------------------------- */

int devconn_open(const struct device *d, enum device_shell shell, const struct devconn_opts *o,
		 struct devconn **out, struct sftca_msg *m)
{
	struct devconn *c = calloc(1, sizeof(*c));
	unsigned char rnd[8];
	long timeout = o->timeout_s;
	unsigned port = (unsigned)d->port;
	int verbosity = SSH_LOG_NOLOG, r;
	bool no = false;

	*out = NULL;
	if (c == NULL)
		return msg_fail(m, SFTCA_ERR_NOMEM, "out of memory");
	c->dev = d;
	c->shell = shell;
	c->timeout_ms = o->timeout_s * 1000;
	c->deadline_s = o->deadline_s;
	c->deadline = o->deadline_s > 0 ? now_ms() + (long long)o->deadline_s * 1000 : 0;
	RAND_bytes(rnd, sizeof(rnd));
	for (int i = 0; i < 8; i++)
		snprintf(c->nonce + 2 * i, 3, "%02x", rnd[i]);
	if ((c->s = ssh_new()) == NULL) {
		free(c);
		return msg_fail(m, SFTCA_ERR_NOMEM, "out of memory");
	}
	ssh_options_set(c->s, SSH_OPTIONS_HOST, d->ip);
	ssh_options_set(c->s, SSH_OPTIONS_PORT, &port);
	ssh_options_set(c->s, SSH_OPTIONS_USER, d->user);
	ssh_options_set(c->s, SSH_OPTIONS_TIMEOUT, &timeout);
	ssh_options_set(c->s, SSH_OPTIONS_KNOWNHOSTS, o->known_hosts);
	ssh_options_set(c->s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
	ssh_options_set(c->s, SSH_OPTIONS_PROCESS_CONFIG, &no);
	ssh_options_set(c->s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
	if (ssh_connect(c->s) != SSH_OK) {
		r = msg_fail(m, SFTCA_ERR_SSH, "cannot connect to %s:%d: %s", d->ip, d->port,
			     ssh_get_error(c->s));
		goto fail;
	}
	/* A backstop for waits inside libssh no step bounds (a write to a
	 * device that stops reading): the socket is shut down at the deadline. */
	if (c->deadline && (c->wd = malloc(sizeof(*c->wd))) != NULL &&
	    watchdog_arm(c->wd, ssh_get_fd(c->s), (int)(c->deadline - now_ms() + 1000)) != 0) {
		free(c->wd);
		c->wd = NULL;
	}
	if ((r = check_host_key(c->s, d, o, m)) != 0 ||
	    (r = authenticate(c->s, d, o, m)) != 0)
		goto fail;
	if (shell == SHELL_FTD) {
		if ((c->sh = ssh_channel_new(c->s)) == NULL || ssh_channel_open_session(c->sh) != SSH_OK ||
		    ssh_channel_request_pty_size(c->sh, "dumb", 200, 40) != SSH_OK ||
		    ssh_channel_request_shell(c->sh) != SSH_OK) {
			r = msg_fail(m, SFTCA_ERR_SSH, "no interactive shell: %s",
				     ssh_get_error(c->s));
			goto fail;
		}
		if ((r = ftd_become_root(c, m)) != 0)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	devconn_close(c);
	return r;
}

void devconn_close(struct devconn *c)
{
	if (c == NULL)
		return;
	if (c->sh) {
		if (ssh_channel_is_open(c->sh)) {
			/* root shell, expert shell, CLI */
			(void)ftd_send(c, "exit\nexit\nexit\n");
			ssh_channel_send_eof(c->sh);
			ssh_channel_close(c->sh);
		}
		ssh_channel_free(c->sh);
	}
	if (c->wd) {
		watchdog_disarm(c->wd);
		free(c->wd);
	}
	if (c->sftp)
		sftp_free(c->sftp);
	if (c->s) {
		if (ssh_is_connected(c->s))
			ssh_disconnect(c->s);
		ssh_free(c->s);
	}
	shellbuf_free(&c->out);
	free(c);
}

const char *devconn_version_uuid(const struct devconn *c)
{
	return c->version_uuid;
}

const char *devconn_version_model(const struct devconn *c)
{
	return c->version_model;
}

int devconn_run(struct devconn *c, const char *cmd, char *out, size_t outlen, int *status,
		struct sftca_msg *m)
{
	if (outlen > OUT_MAX)
		outlen = OUT_MAX;
	*status = -1;
	return c->shell == SHELL_FTD ? ftd_run(c, cmd, out, outlen, status, m)
				     : direct_run(c, cmd, out, outlen, status, m);
}

int devconn_put(struct devconn *c, const char *path, const void *data, size_t len, unsigned mode,
		struct sftca_msg *m)
{
	return c->shell == SHELL_FTD ? ftd_put(c, path, data, len, mode, m)
				     : direct_put(c, path, data, len, mode, m);
}
