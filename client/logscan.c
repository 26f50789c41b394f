#include "logscan.h"

#include "errors.h"
#include "textclean.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

/* sftunnel logs one connection attempt over several lines of the same
 * process ("SF-IMS[50792]: [51982]"): the peer first, then the failing
 * certificate's names, then the error. This much is remembered per process,
 * for the most recent NCTX processes. */
#define NCTX 16
#define NAME_MAX_TEXT 256

struct ctx {
	char key[192];    /* host, program[pid], [thread] */
	unsigned long used; /* 0 = free */
	char peer[64];
	int block;        /* after "Error with certificate", before "err N:" */
	char issuer[NAME_MAX_TEXT], subject[NAME_MAX_TEXT];
	int last_err;     /* finding the last "err N:" went to, or -1 */
	char fmc_stamp[40]; /* second of the last FMC connect failure counted */
	char alert_stamp[40]; /* second and code of the last TLS alert counted */
	int alert_code;
};

struct logscan {
	char line[LOGSCAN_MAX_LINE + 1];
	size_t len;
	int cut;
	unsigned long lines, long_lines, tick;
	struct logscan_finding *f[LOGSCAN_MAX_FINDINGS];
	size_t n;
	struct ctx ctx[NCTX];
	int nomem;
};

/* One parsed syslog line. */
struct hdr {
	char ts[40];
	char host[128];
	char key[192];
	const char *msg;
};

/* ---- remedies ---- */

#define PUSH "sftca push --ca <FMC-UUID> --root / --devices devices.csv"
#define VERIFY "sftca verify --ca <FMC-UUID> --root /"
#define VERIFY_LIVE "sftca verify --ca <FMC-UUID> --root / --live --devices devices.csv"
#define ISSUE "sftca issue --ca <FMC-UUID> --root /"
#define CHECK "sftca check /etc/sf/ca_root /etc/sf/keys /var/sf/peers"

static const char *const steps_expired[] = { CHECK, "sftca status",
					     "sftca ca renew --ca <FMC-UUID>", ISSUE, PUSH, NULL };
static const char *const steps_not_yet[] = { CHECK, ISSUE, PUSH, NULL };
static const char *const steps_bundle[] = { VERIFY, "sftca ca cert --ca <FMC-UUID> --bundle",
					    PUSH, NULL };
static const char *const steps_signature[] = { VERIFY, ISSUE, PUSH, NULL };
static const char *const steps_revoked[] = {
	"sftca ledger --ca <FMC-UUID> --peer <PEER-UUID>",
	"sftca issue --ca <FMC-UUID> --root / --peer <PEER-UUID> --rekey", PUSH, NULL
};
/* A year, like the CRL sftca issue writes: the default week would expire again soon. */
static const char *const steps_crl[] = {
	"sftca crl --ca <FMC-UUID> --days 365 --out /etc/sf/ca_root/crl.pem", NULL
};
static const char *const steps_verify[] = { VERIFY, VERIFY_LIVE, NULL };
static const char *const steps_live[] = { VERIFY_LIVE, CHECK, NULL };
static const char *const steps_fmc[] = { VERIFY_LIVE, PUSH " --retry FAILED_PUSH", NULL };

struct remedy_entry {
	enum logscan_kind kind;
	int code; /* -1: any */
	const char *id;
	struct logscan_remedy r;
};

static const struct remedy_entry remedies[] = {
	{ LOGSCAN_VERIFY_ERROR, 10, "cert_expired",
	  { "A certificate of the sftunnel chain is past its notAfter: the FMC's InternalCA when "
	    "the subject is title=InternalCA, otherwise a peer certificate. Every tunnel that "
	    "reconnects fails until it is replaced. Renewing the CA keeps its key, so the "
	    "certificates it signed verify again once each side has the new CA certificate "
	    "(skip 'ca renew' when 'sftca status' shows the CA valid: then only peer "
	    "certificates expired).",
	    steps_expired } },
	{ LOGSCAN_VERIFY_ERROR, 9, "cert_not_yet_valid",
	  { "A certificate's notBefore is in the future for the side that checks it: that "
	    "side's clock is behind (fix NTP on the FMC and the device first), or the "
	    "certificate was issued by a host whose clock was ahead.",
	    steps_not_yet } },
	{ LOGSCAN_VERIFY_ERROR, 18, "self_signed_cert",
	  { "The peer presented a self-signed certificate that is not the CA in cacert.pem: "
	    "files replaced by hand, or the identity of another FMC.",
	    steps_bundle } },
	{ LOGSCAN_VERIFY_ERROR, 19, "self_signed_in_chain",
	  { "The chain ends in a CA that is not in the verifying side's cacert.pem: the "
	    "device's cacert.pem is not the current trust bundle (after a CA rotation, or a "
	    "bundle from the other FMC of an HA pair).",
	    steps_bundle } },
	{ LOGSCAN_VERIFY_ERROR, 20, "unable_to_get_local_issuer",
	  { "The issuer of the peer's certificate is not in the verifying side's cacert.pem: "
	    "the device's cacert.pem is not the current bundle (for example after 'sftca ca "
	    "rotate', or a CA it never received).",
	    steps_bundle } },
	{ LOGSCAN_VERIFY_ERROR, 2, "unable_to_get_issuer",
	  { "The issuer of a certificate in the chain is not in cacert.pem: the device's "
	    "cacert.pem is not the current bundle.",
	    steps_bundle } },
	{ LOGSCAN_VERIFY_ERROR, 21, "unable_to_verify_leaf",
	  { "The peer's certificate was not issued by any CA in cacert.pem: the device's "
	    "cacert.pem is not the current bundle.",
	    steps_bundle } },
	{ LOGSCAN_VERIFY_ERROR, 7, "signature_failure",
	  { "A certificate's signature does not verify with the CA of the same name in "
	    "cacert.pem: the CA was regenerated with a new key and one side still holds a "
	    "certificate or bundle of the old key.",
	    steps_signature } },
	{ LOGSCAN_VERIFY_ERROR, 23, "cert_revoked",
	  { "The peer's certificate is listed in the CRL (proxy_crl in sftunnel.conf): issue "
	    "that peer a new certificate.",
	    steps_revoked } },
	{ LOGSCAN_VERIFY_ERROR, 3, "crl_unavailable",
	  { "The CRL named by proxy_crl cannot be read: write a fresh one.", steps_crl } },
	{ LOGSCAN_VERIFY_ERROR, 11, "crl_not_yet_valid",
	  { "The CRL's thisUpdate is in the future: check the clock, then write a fresh CRL.",
	    steps_crl } },
	{ LOGSCAN_VERIFY_ERROR, 12, "crl_expired",
	  { "The CRL's nextUpdate has passed: write a fresh one.", steps_crl } },
	{ LOGSCAN_VERIFY_ERROR, -1, "verify_error",
	  { "OpenSSL refused the certificate chain for the reason in the title: find the "
	    "file that causes it.",
	    steps_verify } },
	{ LOGSCAN_HANDSHAKE_FAIL, -1, "ssl_handshake_failed",
	  { "The TLS handshake on port 8305 failed. The err lines of the same process just "
	    "before it say why; without any, suspect reachability or a key that does not "
	    "match its certificate.",
	    steps_live } },
	{ LOGSCAN_VERIFY_STATUS, -1, "ssl_verification_failed",
	  { "The side that logged this rejected its peer's certificate (the status text says "
	    "why).",
	    steps_live } },
	{ LOGSCAN_TLS_ALERT, 45, "tls_alert_certificate_expired",
	  { "The peer ended the handshake with a 'certificate expired' alert: it found a "
	    "certificate this side sent (its own, or the InternalCA in its chain) past its "
	    "notAfter. On the FMC this is how an expired CA or FMC certificate shows; every "
	    "tunnel that reconnects fails until it is replaced (skip 'ca renew' when 'sftca "
	    "status' shows the CA valid).",
	    steps_expired } },
	{ LOGSCAN_TLS_ALERT, 48, "tls_alert_unknown_ca",
	  { "The peer ended the handshake with an 'unknown ca' alert: the CA that signed this "
	    "side's certificate is not in the peer's cacert.pem (a device still holding the "
	    "bundle of another CA, after 'sftca ca rotate', or the other FMC of an HA pair). "
	    "Not an expiry: renewing will not fix it, the bundle will.",
	    steps_bundle } },
	{ LOGSCAN_TLS_ALERT, 44, "tls_alert_certificate_revoked",
	  { "The peer ended the handshake with a 'certificate revoked' alert: this side's "
	    "certificate is in the peer's CRL.",
	    steps_revoked } },
	{ LOGSCAN_TLS_ALERT, -1, "tls_alert",
	  { "The peer ended the handshake with the TLS alert in the title: it rejected this "
	    "side's certificate.",
	    steps_verify } },
	{ LOGSCAN_FMC_CONNECT, -1, "fmc_connect_failed",
	  { "The FMC could not bring up sftunnel to a device: the device is unreachable, or one "
	    "side rejected the other's certificate (run sftca diagnose on the device's log "
	    "too).",
	    steps_fmc } },
};

static const struct remedy_entry *remedy_find(enum logscan_kind kind, int code)
{
	const struct remedy_entry *fallback = NULL;

	for (size_t i = 0; i < sizeof(remedies) / sizeof(remedies[0]); i++) {
		if (remedies[i].kind != kind)
			continue;
		if (remedies[i].code == code)
			return &remedies[i];
		if (remedies[i].code == -1)
			fallback = &remedies[i];
	}
	return fallback;
}

const struct logscan_remedy *logscan_remedy(const struct logscan_finding *f)
{
	const struct remedy_entry *e = remedy_find(f->kind, f->code);
	return e ? &e->r : NULL;
}

/* ---- values and findings ---- */

static void values_free(struct logscan_values *vs)
{
	for (size_t i = 0; i < vs->n; i++)
		free(vs->v[i].text);
	free(vs->v);
}

static void finding_free(struct logscan_finding *f)
{
	if (f == NULL)
		return;
	values_free(&f->hosts);
	values_free(&f->peers);
	values_free(&f->issuers);
	values_free(&f->subjects);
	values_free(&f->ca_ids);
	values_free(&f->details);
	free(f);
}

static void value_add(struct logscan *ls, struct logscan_values *vs, const char *s, size_t len)
{
	char *t;

	if (len == 0)
		return;
	if ((t = text_clean(s, len, 0)) == NULL) {
		ls->nomem = 1;
		return;
	}
	for (size_t i = 0; i < vs->n; i++) {
		if (strcmp(vs->v[i].text, t) == 0) {
			vs->v[i].count++;
			free(t);
			return;
		}
	}
	if (vs->n == LOGSCAN_MAX_VALUES) {
		vs->dropped++;
		free(t);
		return;
	}
	if (vs->v == NULL && (vs->v = calloc(LOGSCAN_MAX_VALUES, sizeof(*vs->v))) == NULL) {
		ls->nomem = 1;
		free(t);
		return;
	}
	vs->v[vs->n].text = t;
	vs->v[vs->n].count = 1;
	vs->n++;
}

static void value_add_str(struct logscan *ls, struct logscan_values *vs, const char *s)
{
	value_add(ls, vs, s, strlen(s));
}

/* TLS alerts about certificates, as OpenSSL words them after "alert "
 * ("sslv3 alert certificate expired", "tlsv1 alert unknown ca"). */
static const struct {
	int code;
	const char *text;
} alerts[] = {
	{ 45, "certificate expired" }, { 48, "unknown ca" },	   { 44, "certificate revoked" },
	{ 42, "bad certificate" },	   { 43, "unsupported certificate" },
	{ 46, "certificate unknown" }, { 49, "access denied" },   { 51, "decrypt error" },
	{ 116, "certificate required" },
};

static const char *alert_name(int code)
{
	for (size_t i = 0; i < sizeof(alerts) / sizeof(alerts[0]); i++)
		if (alerts[i].code == code)
			return alerts[i].text;
	return "?";
}

/* The finding for (kind, code), created on first use; -1 when the table is
 * full or memory ran out. */
static int finding_get(struct logscan *ls, enum logscan_kind kind, int code)
{
	const struct remedy_entry *e;
	struct logscan_finding *f;

	for (size_t i = 0; i < ls->n; i++)
		if (ls->f[i]->kind == kind && ls->f[i]->code == code)
			return (int)i;
	if (ls->n == LOGSCAN_MAX_FINDINGS)
		return -1;
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		ls->nomem = 1;
		return -1;
	}
	f->kind = kind;
	f->code = code;
	e = remedy_find(kind, code);
	if (kind == LOGSCAN_VERIFY_ERROR || kind == LOGSCAN_TLS_ALERT) {
		if (e != NULL && e->code == code)
			snprintf(f->id, sizeof(f->id), "%s", e->id);
		else
			snprintf(f->id, sizeof(f->id), "%s_%d", e ? e->id : "unknown", code);
		if (kind == LOGSCAN_VERIFY_ERROR)
			snprintf(f->title, sizeof(f->title), "%s (OpenSSL verify error %d)",
				 X509_verify_cert_error_string(code), code);
		else
			snprintf(f->title, sizeof(f->title),
				 "peer rejected this side's certificate: TLS alert %s (%d)",
				 alert_name(code), code);
	} else {
		snprintf(f->id, sizeof(f->id), "%s", e ? e->id : "unknown");
		snprintf(f->title, sizeof(f->title), "%s",
			 kind == LOGSCAN_HANDSHAKE_FAIL	 ? "sftunnel TLS handshake failed"
			 : kind == LOGSCAN_VERIFY_STATUS ? "sftunnel peer certificate rejected"
							 : "FMC could not establish sftunnel");
	}
	ls->f[ls->n] = f;
	return (int)ls->n++;
}

/* ---- small parsers ---- */

static const char *skip_spaces(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* The first IPv4 or IPv6 address in s, without a ":port" suffix. */
static int find_ip(const char *s, char out[64])
{
	static const char addr_chars[] = "0123456789abcdefABCDEF.:";

	while (*s) {
		size_t n = strspn(s, addr_chars), colons = 0, dots = 0, hex = 0;
		unsigned char bin[16];
		char cand[64];

		if (n == 0) {
			s++;
			continue;
		}
		if (n < sizeof(cand)) {
			memcpy(cand, s, n);
			cand[n] = '\0';
			for (size_t i = 0; i < n; i++) {
				colons += cand[i] == ':';
				dots += cand[i] == '.';
				hex += isxdigit((unsigned char)cand[i]) != 0;
			}
			if (dots == 3 && colons == 1) /* 10.0.0.1:8305 */
				*strchr(cand, ':') = '\0';
			if ((dots == 3 && inet_pton(AF_INET, cand, bin) == 1) ||
			    (colons >= 2 && hex >= 3 && inet_pton(AF_INET6, cand, bin) == 1)) {
				memcpy(out, cand, strlen(cand) + 1);
				return 1;
			}
		}
		s += n;
	}
	return 0;
}

/* "err 10:reason" or OpenSSL's "error:num=10:reason": the code and where
 * the reason starts. */
static int find_verify_error(const char *msg, int *code, const char **reason)
{
	static const char *const pats[] = { "err ", "num=" };

	for (size_t k = 0; k < sizeof(pats) / sizeof(pats[0]); k++) {
		for (const char *p = strstr(msg, pats[k]); p; p = strstr(p + 1, pats[k])) {
			const char *d = p + strlen(pats[k]);
			int n = 0, digits = 0;

			if (k == 0 && p != msg && p[-1] != ' ' && p[-1] != ']' && p[-1] != '-')
				continue;
			while (isdigit((unsigned char)d[digits]) && digits < 4)
				n = n * 10 + (d[digits++] - '0');
			if (digits == 0 || digits > 3 || d[digits] != ':')
				continue;
			*code = n;
			*reason = skip_spaces(d + digits + 1);
			return 1;
		}
	}
	return 0;
}

/* The text after "name =" / "name=" when the line's message is that. */
static const char *find_assignment(const char *msg, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strstr(msg, name); p; p = strstr(p + 1, name)) {
		const char *q = p + n;

		if (p != msg && p[-1] != ' ' && p[-1] != ']')
			continue;
		q = skip_spaces(q);
		if (*q != '=')
			continue;
		return skip_spaces(q + 1);
	}
	return NULL;
}

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* "Sep 20 04:10:47" (day space-padded or not) at the start of s: its length. */
static size_t bsd_stamp(const char *s)
{
	int month = 0;

	for (size_t i = 0; i < 12; i++)
		if (strncmp(s, months[i], 3) == 0)
			month = 1;
	if (!month || s[3] != ' ')
		return 0;
	if (!(s[4] == ' ' || isdigit((unsigned char)s[4])) || !isdigit((unsigned char)s[5]) ||
	    s[6] != ' ')
		return 0;
	for (int i = 0; i < 8; i++)
		if (i == 2 || i == 5 ? s[7 + i] != ':' : !isdigit((unsigned char)s[7 + i]))
			return 0;
	return 15;
}

/* "2024-09-20T04:10:47[.frac][zone]" at the start of s: the token's length. */
static size_t iso_stamp(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t n = 0;

	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
			return 0;
	/* Fraction and zone only: nothing else a terminal could act on. */
	for (n = sizeof(shape) - 1; s[n] && strchr("0123456789.:+-Z", s[n]); n++)
		;
	return s[n] == '\0' || s[n] == ' ' ? n : 0;
}

static size_t token(const char *s, const char **end)
{
	size_t n = 0;

	while (s[n] && s[n] != ' ')
		n++;
	*end = skip_spaces(s + n);
	return n;
}

static void copy_text(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static void parse_header(const char *line, struct hdr *h)
{
	size_t n = bsd_stamp(line), hl, pl, tl;
	const char *p, *host, *prog, *tid;

	memset(h, 0, sizeof(*h));
	h->msg = line;
	if (n == 0 && (n = iso_stamp(line)) == 0)
		return;
	copy_text(h->ts, sizeof(h->ts), line, n);
	host = skip_spaces(line + n);
	hl = token(host, &prog);
	copy_text(h->host, sizeof(h->host), host, hl);
	pl = token(prog, &tid);
	p = tid;
	tl = 0;
	if (*tid == '[')
		tl = token(tid, &p);
	snprintf(h->key, sizeof(h->key), "%.*s %.*s %.*s", (int)(hl > 60 ? 60 : hl), host,
		 (int)(pl > 60 ? 60 : pl), prog, (int)(tl > 60 ? 60 : tl), tid);
	h->msg = p;
}

/* ---- per-process context ---- */

static struct ctx *ctx_get(struct logscan *ls, const char *key)
{
	struct ctx *victim = &ls->ctx[0];

	ls->tick++;
	for (size_t i = 0; i < NCTX; i++) {
		struct ctx *c = &ls->ctx[i];
		if (c->used && strcmp(c->key, key) == 0) {
			c->used = ls->tick;
			return c;
		}
		if (c->used < victim->used)
			victim = c;
	}
	memset(victim, 0, sizeof(*victim));
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->last_err = -1;
	victim->used = ls->tick;
	return victim;
}

/* ---- line matching ---- */

static void record(struct logscan *ls, int idx, const struct hdr *h, const struct ctx *c)
{
	struct logscan_finding *f;
	char ip[64];

	if (idx < 0)
		return;
	f = ls->f[idx];
	f->count++;
	if (f->count == 1)
		copy_text(f->first, sizeof(f->first), h->ts, strlen(h->ts));
	copy_text(f->last, sizeof(f->last), h->ts, strlen(h->ts));
	value_add_str(ls, &f->hosts, h->host);
	if (c->peer[0])
		value_add_str(ls, &f->peers, c->peer);
	else if (find_ip(h->msg, ip))
		value_add_str(ls, &f->peers, ip);
}

/* A CA subject/issuer names the FMC's UUID as its CN. */
static void add_names(struct logscan *ls, struct logscan_finding *f, const char *issuer,
		      const char *subject)
{
	static const char uuid_chars[] = "0123456789abcdefABCDEF-";

	if (issuer[0]) {
		const char *cn = strstr(issuer, "CN=");
		value_add_str(ls, &f->issuers, issuer);
		if (cn && strspn(cn + 3, uuid_chars) >= 36 && cn[11] == '-' && cn[16] == '-' &&
		    cn[21] == '-' && cn[26] == '-')
			value_add(ls, &f->ca_ids, cn + 3, 36);
	}
	if (subject[0]) {
		value_add_str(ls, &f->subjects, subject);
		/* InternalCA subjects start with title=InternalCA (the seed's
		 * lines are cut at "/title=Intern"); peer subjects have no title. */
		if (strstr(subject, "title=Intern") != NULL)
			f->subject_is_ca = 1;
	}
}

static void match_verify_error(struct logscan *ls, const struct hdr *h, struct ctx *c)
{
	const char *reason;
	int code, idx;

	if (!find_verify_error(h->msg, &code, &reason))
		return;
	if ((idx = finding_get(ls, LOGSCAN_VERIFY_ERROR, code)) < 0)
		return;
	record(ls, idx, h, c);
	value_add(ls, &ls->f[idx]->details, reason, strnlen(reason, 120));
	if (c->block)
		add_names(ls, ls->f[idx], c->issuer, c->subject);
	c->block = 0;
	c->issuer[0] = c->subject[0] = '\0';
	c->last_err = idx;
}

/* issuer/subject lines: held for the "err N" that follows an "Error with
 * certificate" line, or given to the error just logged. */
static void match_names(struct logscan *ls, const struct hdr *h, struct ctx *c)
{
	const char *v;
	int is_issuer = 1;

	if ((v = find_assignment(h->msg, "issuer")) == NULL) {
		if ((v = find_assignment(h->msg, "subject")) == NULL)
			return;
		is_issuer = 0;
	}
	if (c->block) {
		char *dst = is_issuer ? c->issuer : c->subject;
		copy_text(dst, NAME_MAX_TEXT, v, strlen(v));
	} else if (c->last_err >= 0 && (size_t)c->last_err < ls->n) {
		char text[NAME_MAX_TEXT];
		copy_text(text, sizeof(text), v, strlen(v));
		add_names(ls, ls->f[c->last_err], is_issuer ? text : "", is_issuer ? "" : text);
	}
}

static void match_status(struct logscan *ls, const struct hdr *h, struct ctx *c)
{
	const char *p = strstr(h->msg, "SSL Verification status");
	int idx;

	if (p == NULL)
		return;
	p += strlen("SSL Verification status");
	p = skip_spaces(*p == ':' ? p + 1 : p);
	if (strncasecmp(p, "ok", 2) == 0 && !isalnum((unsigned char)p[2]))
		return;
	if ((idx = finding_get(ls, LOGSCAN_VERIFY_STATUS, -1)) < 0)
		return;
	record(ls, idx, h, c);
	value_add(ls, &ls->f[idx]->details, p, strnlen(p, 120));
}

/* The FMC logs one failure over several establishSSLConnection lines in the
 * same second: count them as one. */
static void match_fmc(struct logscan *ls, const struct hdr *h, struct ctx *c)
{
	char ip[64];
	int idx;

	if (strstr(h->msg, "establishSSLConnection") == NULL ||
	    !(strstr(h->msg, "[ERROR]") || strstr(h->msg, "Fail") || strstr(h->msg, "Unable")))
		return;
	if ((idx = finding_get(ls, LOGSCAN_FMC_CONNECT, -1)) < 0)
		return;
	if (h->ts[0] && strcmp(c->fmc_stamp, h->ts) == 0) {
		if (find_ip(h->msg, ip))
			value_add_str(ls, &ls->f[idx]->peers, ip);
		return;
	}
	copy_text(c->fmc_stamp, sizeof(c->fmc_stamp), h->ts, strlen(h->ts));
	record(ls, idx, h, c);
}

/* A TLS alert the peer sent, as OpenSSL reports it in the SSL_renegotiate
 * and establishSSLConnection errors the FMC logs ("error:0A000415:SSL
 * routines::sslv3 alert certificate expired"). Those lines also carry the
 * bare reason ("certificate expired") without the word "alert": taken there
 * too. One process logs one failure over several lines of the same second:
 * counted once per alert and second. */
static void match_alert(struct logscan *ls, const struct hdr *h, struct ctx *c)
{
	int ssl_line = strstr(h->msg, "SSL_renegotiate") != NULL ||
		       strstr(h->msg, "establishSSLConnection") != NULL;
	char ip[64];
	int idx;

	for (size_t i = 0; i < sizeof(alerts) / sizeof(alerts[0]); i++) {
		const char *p = strstr(h->msg, alerts[i].text);
		size_t n = strlen(alerts[i].text);

		if (p == NULL || isalnum((unsigned char)p[n]))
			continue;
		if (!ssl_line && !(p - h->msg >= 6 && strncmp(p - 6, "alert ", 6) == 0))
			continue;
		if ((idx = finding_get(ls, LOGSCAN_TLS_ALERT, alerts[i].code)) < 0)
			return;
		if (h->ts[0] && c->alert_code == alerts[i].code &&
		    strcmp(c->alert_stamp, h->ts) == 0) {
			if (find_ip(h->msg, ip))
				value_add_str(ls, &ls->f[idx]->peers, ip);
			return;
		}
		c->alert_code = alerts[i].code;
		copy_text(c->alert_stamp, sizeof(c->alert_stamp), h->ts, strlen(h->ts));
		record(ls, idx, h, c);
		value_add(ls, &ls->f[idx]->details, p, n);
		return;
	}
}

static void process_line(struct logscan *ls, char *line, size_t len)
{
	struct hdr h;
	struct ctx *c;
	const char *p;

	/* NULs would end the string early: make them visible instead. */
	for (size_t i = 0; i < len; i++)
		if (line[i] == '\0')
			line[i] = '?';
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	if (strstr(line, "sftunnel") == NULL && strstr(line, "sf_ssl") == NULL)
		return;
	parse_header(line, &h);
	c = ctx_get(ls, h.key);
	if ((p = strstr(h.msg, "connect to 8305")) != NULL)
		p += strlen("connect to 8305");
	else if ((p = strstr(h.msg, "Connected to ")) != NULL)
		p += strlen("Connected to ");
	if (p != NULL && !find_ip(p, c->peer))
		c->peer[0] = '\0';
	if (strstr(h.msg, "Error with certificate") != NULL) {
		c->block = 1;
		c->issuer[0] = c->subject[0] = '\0';
		c->last_err = -1;
	}
	match_names(ls, &h, c);
	match_verify_error(ls, &h, c);
	if (strstr(h.msg, "SSL handshake fail") != NULL)
		record(ls, finding_get(ls, LOGSCAN_HANDSHAKE_FAIL, -1), &h, c);
	match_status(ls, &h, c);
	match_fmc(ls, &h, c);
	match_alert(ls, &h, c);
}

/* ---- the public face ---- */

struct logscan *logscan_new(void)
{
	return calloc(1, sizeof(struct logscan));
}

void logscan_free(struct logscan *ls)
{
	if (ls == NULL)
		return;
	for (size_t i = 0; i < ls->n; i++)
		finding_free(ls->f[i]);
	free(ls);
}

static void end_line(struct logscan *ls)
{
	ls->lines++;
	if (ls->cut)
		ls->long_lines++;
	process_line(ls, ls->line, ls->len);
	ls->len = 0;
	ls->cut = 0;
}

int logscan_feed(struct logscan *ls, const char *buf, size_t len)
{
	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t take = nl ? (size_t)(nl - buf) : len, room = LOGSCAN_MAX_LINE - ls->len;

		if (take > room) {
			ls->cut = 1;
			memcpy(ls->line + ls->len, buf, room);
			ls->len += room;
		} else {
			memcpy(ls->line + ls->len, buf, take);
			ls->len += take;
		}
		if (nl == NULL)
			break;
		end_line(ls);
		buf += take + 1;
		len -= take + 1;
	}
	return ls->nomem ? SFTCA_ERR_NOMEM : 0;
}

int logscan_finish(struct logscan *ls)
{
	if (ls->len > 0 || ls->cut)
		end_line(ls);
	memset(ls->ctx, 0, sizeof(ls->ctx));
	return ls->nomem ? SFTCA_ERR_NOMEM : 0;
}

size_t logscan_count(const struct logscan *ls)
{
	return ls->n;
}

const struct logscan_finding *logscan_finding(const struct logscan *ls, size_t i)
{
	return i < ls->n ? ls->f[i] : NULL;
}

unsigned long logscan_lines(const struct logscan *ls)
{
	return ls->lines;
}

unsigned long logscan_long_lines(const struct logscan *ls)
{
	return ls->long_lines;
}
