/* sftca verify --live (see verify_live.h): for each device, a non-blocking
 * TCP connect and a TLS 1.2 handshake under one deadline, on a thread of
 * parallel_for; results are printed in the file's order afterwards. */
#include "verify_live.h"

#include "client.h"
#include "devices.h"
#include "errors.h"
#include "layout.h"
#include "log.h"
#include "msg.h"
#include "parallel.h"
#include "x509util.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct live_result {
	int ok;
	struct sftca_msg why; /* the failure, for humans */
	char protocol[16]; /* on success */
	char cipher[80];
	int64_t not_after;
};

struct live_run {
	SSL_CTX *ctx;
	const struct device_list *devs;
	struct live_result *res;
	int timeout_s;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int64_t left = deadline - now_ms();
		int n;

		if (left <= 0)
			return 0;
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

static void errno_text(int e, char *buf, size_t len)
{
	char tmp[128];
	const char *s = strerror_r(e, tmp, sizeof(tmp));

	snprintf(buf, len, "%s", s);
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
}

/* One address: non-blocking connect under the deadline. fd, or -1 with
 * the error in *err (ETIMEDOUT for the deadline). */
static int connect_addr(const struct addrinfo *a, int64_t deadline, int *err)
{
	int fd, soerr = 0;
	socklen_t sl = sizeof(soerr);

	fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		*err = errno;
		goto fail;
	}
	switch (wait_fd(fd, POLLOUT, deadline)) {
	case 0: *err = ETIMEDOUT; goto fail;
	case -1: *err = errno; goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
		soerr = errno;
	if (soerr == 0)
		return fd;
	*err = soerr;
fail:
	close(fd);
	return -1;
}

/* TCP to host:port, trying each address until the deadline. */
static int tcp_connect(const struct device *d, int64_t deadline, int timeout_s,
		       struct sftca_msg *why)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char port[8], text[128];
	int fd = -1, err = 0, g;

	snprintf(port, sizeof(port), "%d", d->tunnel_port);
	if ((g = getaddrinfo(d->ip, port, &hints, &ai)) != 0) {
		msg_set(why, "cannot resolve %s: %s", d->ip, gai_strerror(g));
		return -1;
	}
	for (const struct addrinfo *a = ai; a != NULL && fd < 0 && now_ms() < deadline; a = a->ai_next)
		fd = connect_addr(a, deadline, &err);
	freeaddrinfo(ai);
	if (fd >= 0)
		return fd;
	if (err == ETIMEDOUT || err == 0)
		msg_set(why, "connect timed out after %d s", timeout_s);
	else if (err == ECONNREFUSED)
		msg_set(why, "connection refused (is sftunnel listening on port %d?)",
			d->tunnel_port);
	else {
		errno_text(err, text, sizeof(text));
		msg_set(why, "connect: %s", text);
	}
	return -1;
}

/* Why SSL_connect failed, in the user's terms. */
static void handshake_failure(SSL *ssl, int sslerr, int saved_errno, struct sftca_msg *why)
{
	long v = SSL_get_verify_result(ssl);
	unsigned long e = ERR_peek_error();
	char text[256];

	if (v == X509_V_ERR_CERT_REVOKED || v == X509_V_ERR_UNABLE_TO_GET_CRL ||
	    v == X509_V_ERR_CRL_HAS_EXPIRED || v == X509_V_ERR_CRL_SIGNATURE_FAILURE) {
		msg_set(why, "peer certificate refused by the CRL check: %s",
			X509_verify_cert_error_string(v));
	} else if (v != X509_V_OK) {
		msg_set(why, "peer certificate does not chain to the bundle: %s",
			X509_verify_cert_error_string(v));
	} else if (e != 0) {
		const char *reason = ERR_reason_error_string(e);
		if (reason == NULL) {
			ERR_error_string_n(e, text, sizeof(text));
			reason = text;
		}
		msg_set(why, "TLS handshake failed: %s", reason);
	} else if (sslerr == SSL_ERROR_SYSCALL && saved_errno != 0) {
		errno_text(saved_errno, text, sizeof(text));
		msg_set(why, "TLS handshake failed: %s", text);
	} else {
		msg_set(why, "TLS handshake failed: the device closed the connection");
	}
	ERR_clear_error();
}

/* The handshake on a connected socket, then the checks of the peer. */
static void tls_check(const struct live_run *lr, const struct device *d, int fd, int64_t deadline,
		      struct live_result *res)
{
	SSL *ssl = NULL;
	X509 *peer = NULL;
	char cn[128];

	ERR_clear_error();
	if ((ssl = SSL_new(lr->ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
		msg_set(&res->why, "cannot set up TLS (out of memory?)");
		goto out;
	}
	for (;;) {
		int rc = SSL_connect(ssl), saved = errno, e, w;
		if (rc == 1)
			break;
		e = SSL_get_error(ssl, rc);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			handshake_failure(ssl, e, saved, &res->why);
			goto out;
		}
		if ((w = wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) <= 0) {
			if (w == 0)
				msg_set(&res->why, "TLS handshake timed out after %d s", lr->timeout_s);
			else {
				char text[128];
				errno_text(errno, text, sizeof(text));
				msg_set(&res->why, "%s", text);
			}
			goto out;
		}
	}
	if ((peer = SSL_get1_peer_certificate(ssl)) == NULL) {
		msg_set(&res->why, "the device presented no certificate");
		goto out;
	}
	if (SSL_get_verify_result(ssl) != X509_V_OK) { /* SSL_VERIFY_PEER makes this unreachable */
		msg_set(&res->why, "peer certificate does not chain to the bundle: %s",
			X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
		goto out;
	}
	res->not_after = x509_not_after(peer);
	if (x509_name_cn(X509_get_subject_name(peer), cn, sizeof(cn)) != 0) {
		msg_set(&res->why, "the peer certificate has no CN, expected %s", d->uuid);
		goto out;
	}
	if (strcmp(cn, d->uuid) != 0) {
		msg_set(&res->why, "CN is %s, expected %s", cn, d->uuid);
		goto out;
	}
	snprintf(res->protocol, sizeof(res->protocol), "%s", SSL_get_version(ssl));
	snprintf(res->cipher, sizeof(res->cipher), "%s", SSL_get_cipher_name(ssl));
	res->ok = 1;
	(void)SSL_shutdown(ssl); /* one try: a close_notify, not waited for */
out:
	ERR_clear_error();
	X509_free(peer);
	SSL_free(ssl);
}

static void live_one(void *arg, size_t i)
{
	const struct live_run *lr = arg;
	const struct device *d = &lr->devs->v[i];
	struct live_result *res = &lr->res[i];
	int64_t deadline = now_ms() + (int64_t)lr->timeout_s * 1000;
	int fd;

	if (d->uuid[0] == '\0') {
		msg_set(&res->why,
			"no uuid for this device (line %d): add a uuid column, the certificate's CN "
			"must match it",
			d->line);
		return;
	}
	if ((fd = tcp_connect(d, deadline, lr->timeout_s, &res->why)) < 0)
		return;
	tls_check(lr, d, fd, deadline, res);
	close(fd);
}

/* The CRLs of crl.pem (the file sftunnel.conf names) into the context's
 * store, with the leaf checked against them, as sftunnel does. No file, no
 * check. */
static int live_crls(SSL_CTX *ctx, const char *path)
{
	STACK_OF(X509_CRL) *crls = NULL;
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	int r = 0;

	if (access(path, F_OK) != 0)
		return 0;
	if ((r = pem_load_crls(path, &crls)) != 0) {
		log_error("%s cannot be read as CRLs: %s", path, sftca_strerror(r));
		return r;
	}
	for (int i = 0; i < sk_X509_CRL_num(crls) && r == 0; i++)
		if (X509_STORE_add_crl(store, sk_X509_CRL_value(crls, i)) != 1)
			r = SFTCA_ERR_CRYPTO;
	if (r == 0 && X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_CRL_CHECK) != 1)
		r = SFTCA_ERR_CRYPTO;
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return r;
}

/* A client context as sftunnel's: TLS 1.2 only, the FMC identity, the
 * bundle as the only trust (and its CRL), the peer certificate required. */
static int live_ctx(const char *root, SSL_CTX **out)
{
	char dir[4200], cert[4300], key[4300], bundle[4300], crl[4300];
	SSL_CTX *ctx = NULL;
	int r = SFTCA_ERR_CRYPTO;

	if (layout_self_dir(root, dir, sizeof(dir)) != 0 ||
	    layout_file(dir, LAYOUT_CERT, cert, sizeof(cert)) != 0 ||
	    layout_file(dir, LAYOUT_KEY, key, sizeof(key)) != 0 ||
	    layout_ca_root(root, dir, sizeof(dir)) != 0 ||
	    layout_file(dir, LAYOUT_BUNDLE, bundle, sizeof(bundle)) != 0 ||
	    layout_file(dir, LAYOUT_CRL, crl, sizeof(crl)) != 0) {
		log_error("%s: path too long", root);
		return SFTCA_ERR_INVALID;
	}
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1) {
		log_crypto("creating a TLS 1.2 client context");
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		log_crypto("loading the FMC identity");
		log_error("the FMC identity %s + %s cannot be used (sftca issue --self writes it)",
			  cert, key);
		goto out;
	}
	if (SSL_CTX_load_verify_locations(ctx, bundle, NULL) != 1) {
		log_crypto("loading the trust bundle");
		log_error("no trust bundle at %s (sftca issue writes it)", bundle);
		goto out;
	}
	if ((r = live_crls(ctx, crl)) != 0)
		goto out;
	r = SFTCA_ERR_CRYPTO;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	*out = ctx;
	ctx = NULL;
	r = 0;
out:
	SSL_CTX_free(ctx);
	return r;
}

static void addr_text(const struct device *d, char *buf, size_t len)
{
	if (strchr(d->ip, ':') != NULL) /* IPv6 literal */
		snprintf(buf, len, "[%s]:%d", d->ip, d->tunnel_port);
	else
		snprintf(buf, len, "%s:%d", d->ip, d->tunnel_port);
}

static void report(const struct device_list *devs, const struct live_result *res, json_t *arr,
		   size_t *failed)
{
	for (size_t i = 0; i < devs->n; i++) {
		const struct device *d = &devs->v[i];
		const struct live_result *x = &res[i];
		char addr[96], na[40] = "";

		addr_text(d, addr, sizeof(addr));
		if (x->not_after)
			fmt_time(x->not_after, na, sizeof(na));
		*failed += !x->ok;
		if (arr != NULL)
			json_array_append_new(
				arr, json_pack("{s:s, s:s, s:i, s:s, s:b, s:s, s:s, s:s, s:s}", "name",
					       d->name, "ip", d->ip, "port", d->tunnel_port, "uuid",
					       d->uuid, "ok", x->ok, "protocol", x->protocol,
					       "cipher", x->cipher, "not_after", na, "error",
					       x->ok ? "" : x->why.text));
		else if (x->ok)
			printf("%s %s %s  OK  (%s, %s, peer cert notAfter %s)\n", d->name, addr,
			       d->uuid, x->protocol, x->cipher, na);
		else
			printf("%s %s %s  FAILED  %s\n", d->name, addr, d->uuid[0] ? d->uuid : "-",
			       x->why.text);
	}
}

int verify_live(const struct live_opts *o, json_t **json, size_t *failed)
{
	struct device_list devs = { 0 };
	struct live_run lr = { .timeout_s = o->timeout_s };
	json_t *arr = NULL;
	int r;

	*failed = 0;
	if (json != NULL)
		*json = NULL;
	if ((r = devices_load(o->devices, &devs)) != 0)
		goto out;
	if ((r = live_ctx(o->root, &lr.ctx)) != 0)
		goto out;
	if ((lr.res = calloc(devs.n, sizeof(*lr.res))) == NULL) {
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	lr.devs = &devs;
	parallel_for(o->jobs, devs.n, live_one, &lr);
	if (json != NULL && (arr = json_array()) == NULL) {
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	report(&devs, lr.res, arr, failed);
	if (arr != NULL) {
		*json = json_pack("{s:o, s:I, s:I}", "devices", arr, "ok",
				  (json_int_t)(devs.n - *failed), "failed", (json_int_t)*failed);
		arr = NULL;
	} else {
		printf("live: %zu device%s, %zu OK, %zu FAILED\n", devs.n, devs.n == 1 ? "" : "s",
		       devs.n - *failed, *failed);
	}
	r = 0;
out:
	json_decref(arr);
	free(lr.res);
	SSL_CTX_free(lr.ctx);
	devices_free(&devs);
	return r;
}
