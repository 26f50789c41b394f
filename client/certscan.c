#include "certscan.h"

#include "errors.h"
#include "log.h"
#include "textclean.h"
#include "x509util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <search.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct certscan {
	struct certscan_opts o;
	struct cert_result *res;
	size_t n, cap;
	void *seen; /* tsearch tree of struct file_id: directories and files visited */
	size_t files, skipped_backups;
};

struct file_id {
	dev_t dev;
	ino_t ino;
};

#define CRL_MARKER "-----BEGIN X509 CRL-----"

static const char *const cert_markers[] = {
	"-----BEGIN CERTIFICATE-----",
	"-----BEGIN X509 CERTIFICATE-----",
	"-----BEGIN TRUSTED CERTIFICATE-----",
};

struct certscan *certscan_new(const struct certscan_opts *o)
{
	struct certscan *cs = calloc(1, sizeof(*cs));

	if (cs != NULL)
		cs->o = *o;
	return cs;
}

static void result_clear(struct cert_result *r)
{
	free(r->path);
	free(r->subject);
	free(r->issuer);
	free(r->error);
}

void certscan_free(struct certscan *cs)
{
	if (cs == NULL)
		return;
	for (size_t i = 0; i < cs->n; i++)
		result_clear(&cs->res[i]);
	free(cs->res);
	tdestroy(cs->seen, free);
	free(cs);
}

size_t certscan_count(const struct certscan *cs)
{
	return cs->n;
}

const struct cert_result *certscan_result(const struct certscan *cs, size_t i)
{
	return i < cs->n ? &cs->res[i] : NULL;
}

size_t certscan_files(const struct certscan *cs)
{
	return cs->files;
}

size_t certscan_skipped_backups(const struct certscan *cs)
{
	return cs->skipped_backups;
}

enum expiry_state certscan_worse(enum expiry_state a, enum expiry_state b)
{
	static const int rank[] = { [EXPIRY_OK] = 0, [EXPIRY_UNKNOWN] = 1, [EXPIRY_WARNING] = 2,
				    [EXPIRY_CRITICAL] = 3 };
	return rank[a] >= rank[b] ? a : b;
}

enum expiry_state certscan_worst(const struct certscan *cs)
{
	enum expiry_state w = EXPIRY_OK;

	if (cs->n == 0)
		return EXPIRY_UNKNOWN;
	for (size_t i = 0; i < cs->n; i++)
		w = certscan_worse(w, cs->res[i].state);
	return w;
}

/* A new zeroed result for path, or NULL when out of memory. */
static struct cert_result *result_add(struct certscan *cs, const char *path, int index)
{
	struct cert_result *r;

	if (cs->n == cs->cap) {
		size_t cap = cs->cap ? cs->cap * 2 : 16;
		struct cert_result *res = realloc(cs->res, cap * sizeof(*res));
		if (res == NULL)
			return NULL;
		cs->res = res;
		cs->cap = cap;
	}
	r = &cs->res[cs->n];
	memset(r, 0, sizeof(*r));
	if ((r->path = text_clean(path, strlen(path), TEXT_KEEP_CONTROLS)) == NULL)
		return NULL;
	r->index = index;
	r->state = EXPIRY_UNKNOWN;
	cs->n++;
	return r;
}

/* Record that path (or its certificate block index) could not be checked. */
__attribute__((format(printf, 4, 5))) static int add_error(struct certscan *cs, const char *path,
							   int index, const char *fmt, ...)
{
	struct cert_result *r = result_add(cs, path, index);
	char msg[512];
	va_list ap;

	if (r == NULL)
		return SFTCA_ERR_NOMEM;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if ((r->error = text_clean(msg, strlen(msg), 0)) == NULL)
		return SFTCA_ERR_NOMEM;
	log_debug("%s: %s", path, msg);
	return 0;
}

static char *name_text(const X509_NAME *n)
{
	char buf[1024];

	x509_name_text(n, buf, sizeof(buf));
	return text_clean(buf, strlen(buf), 0);
}

static int set_times(struct certscan *cs, struct cert_result *r, const ASN1_TIME *from,
		     const ASN1_TIME *to, const char *what)
{
	if (to == NULL || asn1_time_unix(from, &r->not_before) != 0 ||
	    asn1_time_unix(to, &r->not_after) != 0)
		return (r->error = text_clean(what, strlen(what), 0)) ? 0 : SFTCA_ERR_NOMEM;
	r->days = expiry_days(r->not_after, cs->o.now, &r->expired);
	r->state = expiry_classify(r->not_after, cs->o.now, cs->o.warn_days, cs->o.crit_days);
	return 0;
}

static int add_cert(struct certscan *cs, const char *path, int index, X509 *x)
{
	struct cert_result *r;

	if ((r = result_add(cs, path, index)) == NULL)
		return SFTCA_ERR_NOMEM;
	if ((r->subject = name_text(X509_get_subject_name(x))) == NULL ||
	    (r->issuer = name_text(X509_get_issuer_name(x))) == NULL)
		return SFTCA_ERR_NOMEM;
	if (x509_serial_hex(x, r->serial, sizeof(r->serial)) != 0)
		snprintf(r->serial, sizeof(r->serial), "?");
	return set_times(cs, r, X509_get0_notBefore(x), X509_get0_notAfter(x),
			 "validity dates do not parse");
}

static int add_crl(struct certscan *cs, const char *path, int index, X509_CRL *crl)
{
	ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	struct cert_result *r;
	int rc = SFTCA_ERR_NOMEM;

	if ((r = result_add(cs, path, index)) == NULL)
		goto out;
	r->crl = 1;
	if ((r->subject = name_text(X509_CRL_get_issuer(crl))) == NULL ||
	    (r->issuer = strdup(r->subject)) == NULL)
		goto out;
	if (num == NULL || asn1_int_hex(num, r->serial, sizeof(r->serial)) != 0)
		r->serial[0] = '\0';
	rc = set_times(cs, r, X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_nextUpdate(crl),
		       "CRL without a readable thisUpdate/nextUpdate: it cannot be judged");
out:
	ASN1_INTEGER_free(num);
	ERR_clear_error();
	return rc;
}

/* Every certificate (or, crl set, CRL) block of a PEM buffer; a block that
 * does not parse is an UNKNOWN result with its index, and the blocks after
 * it still count. */
static int scan_pem(struct certscan *cs, const char *path, const char *buf, size_t len, int crl)
{
	const char *what = crl ? "CRL" : "certificate";
	BIO *bio = NULL;
	int index = 0, good = 0, r = SFTCA_ERR_NOMEM;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
		goto out;
	for (;;) {
		long before = (long)BIO_pending(bio);
		X509_CRL *l = crl ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
		X509 *x = crl ? NULL : PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);

		if (x != NULL || l != NULL) {
			r = x ? add_cert(cs, path, index++, x) : add_crl(cs, path, index++, l);
			X509_free(x);
			X509_CRL_free(l);
			if (r != 0)
				goto out;
			good++;
			continue;
		}
		if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE)
			break;
		ERR_clear_error();
		if ((r = add_error(cs, path, index, "%s block %d is damaged and does not parse", what,
				   index)) != 0)
			goto out;
		index++;
		/* A block that consumed nothing would repeat forever. */
		if ((long)BIO_pending(bio) >= before || BIO_pending(bio) == 0)
			break;
	}
	if (index == 0 &&
	    (r = add_error(cs, path, -1, "a %s marker but no readable PEM block", what)) != 0)
		goto out;
	if (good > 0)
		cs->files++;
	r = 0;
out:
	ERR_clear_error();
	BIO_free(bio);
	return r;
}

static int has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);
	return n >= s && strcmp(name + n - s, suffix) == 0;
}

/* Names that promise a certificate: an unreadable or empty one is a problem. */
static int cert_name(const char *name)
{
	static const char *const ext[] = { ".pem", ".crt", ".cer", ".cert", ".der" };

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
		if (has_suffix(name, ext[i]))
			return 1;
	return 0;
}

/* The vendor's NAME.backup and sftca's NAME.backup.<stamp>[.N]. */
static int backup_name(const char *name)
{
	return has_suffix(name, ".backup") || strstr(name, ".backup.") != NULL;
}

/* sftca's own files in the middle of an atomic replacement. */
static int transient_name(const char *name)
{
	return strstr(name, ".sftca-tmp.") != NULL || has_suffix(name, ".sftca-stage") ||
	       strstr(name, ".sftca-stage.") != NULL;
}

static int has_cert_marker(const char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(cert_markers) / sizeof(cert_markers[0]); i++)
		if (memmem(buf, len, cert_markers[i], strlen(cert_markers[i])) != NULL)
			return 1;
	return 0;
}

/* Read a regular file of at most X509UTIL_MAX_FILE bytes without ever
 * blocking on a FIFO or device. SFTCA_ERR_IO (errno in *err),
 * SFTCA_ERR_INVALID when it is not a regular file, SFTCA_ERR_LIMIT when it
 * is too large. */
static int read_small_file(const char *path, char **buf, size_t *len, int *err)
{
	struct stat st;
	size_t off = 0;
	char *b = NULL;
	int fd, r = SFTCA_ERR_IO;

	*buf = NULL;
	*len = 0;
	*err = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) < 0) {
		*err = errno;
		return SFTCA_ERR_IO;
	}
	if (fstat(fd, &st) != 0) {
		*err = errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = SFTCA_ERR_INVALID;
		goto out;
	}
	if ((unsigned long long)st.st_size > X509UTIL_MAX_FILE) {
		r = SFTCA_ERR_LIMIT;
		goto out;
	}
	if ((b = malloc((size_t)st.st_size + 1)) == NULL) {
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, b + off, (size_t)st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = errno;
			goto out;
		}
		if (n == 0)
			break; /* shrank while we read: take what is there */
		off += (size_t)n;
	}
	b[off] = '\0';
	*buf = b;
	*len = off;
	b = NULL;
	r = 0;
out:
	if (b != NULL) {
		OPENSSL_cleanse(b, (size_t)st.st_size + 1);
		free(b);
	}
	close(fd);
	return r;
}

/* One file: named by the user (explicit: it must hold a certificate) or met
 * in a walk (only files that hold or promise certificates count). */
static int scan_file(struct certscan *cs, const char *path, const char *name, int explicit)
{
	int must = explicit || cert_name(name);
	char *buf = NULL;
	size_t len = 0;
	const char *begin;
	X509 *x;
	int err, r;

	r = read_small_file(path, &buf, &len, &err);
	if (r == SFTCA_ERR_NOMEM)
		return r;
	if (r == SFTCA_ERR_IO)
		return must ? add_error(cs, path, -1, "cannot read: %s", strerror(err)) : 0;
	if (r == SFTCA_ERR_INVALID)
		return explicit ? add_error(cs, path, -1, "not a regular file or directory") : 0;
	if (r == SFTCA_ERR_LIMIT)
		return must ? add_error(cs, path, -1,
					"larger than %u bytes: not a certificate file",
					X509UTIL_MAX_FILE)
			    : 0;
	if (has_cert_marker(buf, len) || memmem(buf, len, CRL_MARKER, strlen(CRL_MARKER))) {
		/* A file may hold both (a bundle with its CRLs): each is judged,
		 * the file counted once. */
		size_t files = cs->files;
		r = has_cert_marker(buf, len) ? scan_pem(cs, path, buf, len, 0) : 0;
		if (r == 0 && memmem(buf, len, CRL_MARKER, strlen(CRL_MARKER)) != NULL)
			r = scan_pem(cs, path, buf, len, 1);
		if (cs->files > files + 1)
			cs->files = files + 1;
	} else if (!must) {
		r = 0;
	} else if ((begin = memmem(buf, len, "-----BEGIN ", 11)) != NULL) {
		/* A key or request: not a certificate file. */
		const char *label = begin + 11;
		int llen = (int)strcspn(label, "-\n");

		if (llen > 40)
			llen = 40;
		if (explicit)
			r = add_error(cs, path, -1, "holds a PEM %.*s block but no certificate", llen,
				      label);
		else
			log_debug("%s: PEM %.*s, no certificate: skipped", path, llen, label);
	} else if ((x = x509_from_der((const unsigned char *)buf, len)) != NULL) {
		r = add_cert(cs, path, 0, x);
		X509_free(x);
		if (r == 0)
			cs->files++;
	} else {
		r = add_error(cs, path, -1, "%s",
			      len == 0 ? "empty file" : "holds no certificate (neither PEM nor DER)");
	}
	OPENSSL_cleanse(buf, len); /* it may have held a private key too */
	free(buf);
	return r;
}

static int id_cmp(const void *a, const void *b)
{
	const struct file_id *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return 0;
}

/* 1 if st was visited before (and remember it), 0 if new, <0 on error. */
static int seen_before(struct certscan *cs, const struct stat *st)
{
	struct file_id *id = malloc(sizeof(*id)), **found;

	if (id == NULL)
		return SFTCA_ERR_NOMEM;
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	if ((found = tsearch(id, &cs->seen, id_cmp)) == NULL) {
		free(id);
		return SFTCA_ERR_NOMEM;
	}
	if (*found != id) {
		free(id);
		return 1;
	}
	return 0;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int scan_entry(struct certscan *cs, const char *path, const char *name, int depth,
		      int explicit);

static int scan_dir(struct certscan *cs, const char *path, int depth)
{
	struct dirent **ents = NULL;
	char child[PATH_MAX];
	int n, r = 0;

	if ((n = scandir(path, &ents, NULL, name_cmp)) < 0)
		return add_error(cs, path, -1, "cannot list directory: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		int len;

		if (r != 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
		    transient_name(name))
			continue;
		if (!cs->o.include_backups && backup_name(name)) {
			cs->skipped_backups++;
			log_debug("%s/%s: backup, skipped (--include-backups checks it)", path, name);
			continue;
		}
		len = snprintf(child, sizeof(child), "%s%s%s", path,
			       has_suffix(path, "/") ? "" : "/", name);
		if (len < 0 || (size_t)len >= sizeof(child))
			r = add_error(cs, path, -1, "an entry's path is longer than %d bytes",
				      PATH_MAX - 1);
		else
			r = scan_entry(cs, child, name, depth + 1, 0);
	}
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return r;
}

static int scan_entry(struct certscan *cs, const char *path, const char *name, int depth,
		      int explicit)
{
	struct stat st, lst;
	int r;

	if (stat(path, &st) != 0) {
		int e = errno;
		int link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);

		if (!explicit && !cert_name(name) && link)
			return 0; /* a dangling link that promised nothing */
		return add_error(cs, path, -1, "%s%s", link ? "broken symbolic link: " : "",
				 strerror(e));
	}
	if (S_ISDIR(st.st_mode)) {
		if ((r = seen_before(cs, &st)) != 0)
			return r < 0 ? r : 0; /* a loop or a second way in */
		if (depth > CERTSCAN_MAX_DEPTH)
			return add_error(cs, path, -1, "more than %d directory levels deep: not walked",
					 CERTSCAN_MAX_DEPTH);
		return scan_dir(cs, path, depth);
	}
	if (!S_ISREG(st.st_mode))
		return explicit ? add_error(cs, path, -1, "not a regular file or directory") : 0;
	if ((r = seen_before(cs, &st)) != 0)
		return r < 0 ? r : 0;
	return scan_file(cs, path, name, explicit);
}

int certscan_path(struct certscan *cs, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash && slash[1] ? slash + 1 : path;
	struct stat st;
	size_t before = cs->n;
	int r, dir;

	if (path[0] == '\0')
		return add_error(cs, path, -1, "empty path");
	dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
	if (dir) {
		struct file_id id = { st.st_dev, st.st_ino };
		if (tfind(&id, &cs->seen, id_cmp) != NULL)
			return 0; /* named twice, or inside a directory already walked */
	}
	if ((r = scan_entry(cs, path, name, 0, 1)) != 0)
		return r;
	/* A directory that yields nothing is most likely the wrong one. */
	if (dir && cs->n == before)
		return add_error(cs, path, -1, "no certificate found in this directory");
	return 0;
}
