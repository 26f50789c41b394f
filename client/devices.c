/* devices.csv (see devices.h). libcsv splits the records; this file counts
 * lines, maps the columns, validates every row and keeps the passwords in
 * their own locked buffers, wiped when freed or when the file is refused.
 * The copies libcsv and the parser make on the way are wiped too. */
#include "devices.h"

#include "errors.h"
#include "fileio.h"
#include "log.h"
#include "uuid.h"

#include <csv.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define DEVICES_MAX_FILE (16u << 20)
#define FIELD_MAX 1024 /* bytes of a field kept: admin_password's limit + 1 */
#define SHOWN 64       /* bytes of a bad value quoted in a message */
#define DEFAULT_PORT 22
#define DEFAULT_TUNNEL_PORT 8305

enum column { COL_NAME, COL_IP, COL_USER, COL_PASSWORD, COL_UUID, COL_PORT, COL_SHELL, COL_TUNNEL, NCOLS };
#define NREQUIRED 4 /* the vendor's columns, required in every row */

static const char *const column_names[NCOLS] = { "device_name", "ip",   "admin_username",
						 "admin_password", "uuid", "port",
						 "shell",          "tunnel_port" };
#define COLUMN_LIST "device_name,ip,admin_username,admin_password[,uuid,port,shell,tunnel_port]"

struct csvctx {
	const char *name;         /* file name for messages */
	struct device_list *out;
	size_t cap;
	int line;                 /* line of the byte being parsed */
	int rec_line;             /* line the current record began on */
	int in_record;
	int first_done;           /* the first record (maybe a header) was seen */
	size_t ncols;             /* fields a row must have; 0 = the vendor's 4..8 */
	enum column map[NCOLS];   /* file column -> meaning */
	size_t nf;                /* fields of the current record so far */
	size_t flen[NCOLS];       /* their real lengths (kept up to FIELD_MAX - 1) */
	int fnul[NCOLS];
	char f[NCOLS][FIELD_MAX]; /* may hold a password: wiped after each record */
	int r;                    /* first error; parsing stops there */
	struct raw_list *raw;     /* devices_rewrite: every record as it was, or NULL */
};

/* A record's fields byte for byte (devices_rewrite), the header's too. */
struct raw_rec {
	size_t nf;
	char *f[NCOLS];
	size_t len[NCOLS];
	int header;
};

struct raw_list {
	struct raw_rec *v;
	size_t n, cap;
};

/* Length and ellipsis for quoting at most SHOWN bytes of a value. */
#define SHOW(len) (int)((len) < SHOWN ? (len) : SHOWN), ((len) > SHOWN ? "..." : "")

static int row_error(const struct csvctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int row_error(const struct csvctx *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s line %d: %s", c->name, c->rec_line, msg);
	return SFTCA_ERR_INVALID;
}

/* libcsv grows its field buffer with realloc: wipe what it leaves behind. */
static void *wiping_realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	if (p == NULL)
		return malloc(n);
	old = malloc_usable_size(p);
	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	OPENSSL_cleanse(p, old);
	free(p);
	return q;
}

static void wiping_free(void *p)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

static void device_wipe(struct device *d)
{
	if (d->password == NULL)
		return;
	/* Wiped, not munlock()ed: locks are per page and not counted, so an
	 * unlock would also unlock a neighbour's password on the same page. */
	OPENSSL_cleanse(d->password, d->password_len + 1);
	free(d->password);
	d->password = NULL;
	d->password_len = 0;
}

void devices_free(struct device_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		device_wipe(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

const char *device_shell_name(enum device_shell s)
{
	switch (s) {
	case SHELL_DIRECT: return "direct";
	case SHELL_FTD: return "ftd";
	default: return "default";
	}
}

/* device_name, ip, admin_username: not empty, shorter than the buffer, no
 * control characters (and no blanks in an address). */
static int set_text(const struct csvctx *c, enum column col, const char *v, size_t len, char *dst,
		    size_t size)
{
	if (len == 0)
		return row_error(c, "empty %s", column_names[col]);
	if (len >= size)
		return row_error(c, "%s is %zu bytes; at most %zu allowed", column_names[col], len,
				 size - 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch < 0x20 || ch == 0x7f)
			return row_error(c, "%s \"%.*s%s\" contains a control character",
					 column_names[col], SHOW(len), v);
		if (col == COL_IP && ch == ' ')
			return row_error(c, "ip \"%.*s%s\" contains a space", SHOW(len), v);
	}
	memcpy(dst, v, len);
	dst[len] = '\0';
	return 0;
}

/* The password is never quoted in a message, not even in part. */
static int set_password(const struct csvctx *c, struct device *d, const char *v, size_t len)
{
	if (len >= FIELD_MAX)
		return row_error(c, "admin_password is %zu bytes; at most %d allowed", len,
				 FIELD_MAX - 1);
	device_wipe(d);
	if ((d->password = malloc(len + 1)) == NULL)
		return SFTCA_ERR_NOMEM;
	(void)mlock(d->password, len + 1); /* where permitted */
	memcpy(d->password, v, len);
	d->password[len] = '\0';
	d->password_len = len;
	return 0;
}

/* A port: empty keeps the default; otherwise digits only, 1..65535. */
static int set_port(const struct csvctx *c, enum column col, const char *v, size_t len, int *out)
{
	long n = 0;

	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return row_error(c, "%s \"%.*s%s\" is not a number", column_names[col],
					 SHOW(len), v);
		if (n <= 65535)
			n = n * 10 + (v[i] - '0');
	}
	if (n < 1 || n > 65535)
		return row_error(c, "%s %.*s%s is out of range (1-65535)", column_names[col],
				 SHOW(len), v);
	*out = (int)n;
	return 0;
}

static int set_field(const struct csvctx *c, struct device *d, enum column col, size_t i)
{
	const char *v = c->f[i];
	size_t len = c->flen[i];

	if (c->fnul[i])
		return row_error(c, "%s contains a NUL byte", column_names[col]);
	switch (col) {
	case COL_NAME: return set_text(c, col, v, len, d->name, sizeof(d->name));
	case COL_IP: return set_text(c, col, v, len, d->ip, sizeof(d->ip));
	case COL_USER: return set_text(c, col, v, len, d->user, sizeof(d->user));
	case COL_PASSWORD: return set_password(c, d, v, len);
	case COL_UUID:
		if (len > 0 && (len >= sizeof(d->uuid) || !uuid_is_canonical(v)))
			return row_error(c, "uuid \"%.*s%s\": not a canonical lowercase UUID",
					 SHOW(len), v);
		memcpy(d->uuid, v, len);
		d->uuid[len] = '\0';
		return 0;
	case COL_PORT: return set_port(c, col, v, len, &d->port);
	case COL_TUNNEL: return set_port(c, col, v, len, &d->tunnel_port);
	case COL_SHELL:
		if (len == 0)
			d->shell = SHELL_DEFAULT;
		else if (strcasecmp(v, "direct") == 0)
			d->shell = SHELL_DIRECT;
		else if (strcasecmp(v, "ftd") == 0)
			d->shell = SHELL_FTD;
		else
			return row_error(c, "shell \"%.*s%s\": must be direct or ftd", SHOW(len), v);
		return 0;
	default: return SFTCA_ERR_INTERNAL;
	}
}

/* Another row with this device's name or UUID? */
static int check_unique(const struct csvctx *c, const struct device *d)
{
	for (size_t i = 0; i < c->out->n; i++) {
		const struct device *o = &c->out->v[i];
		if (strcmp(o->name, d->name) == 0)
			return row_error(c, "device \"%s\" is also on line %d", d->name, o->line);
		if (d->uuid[0] && strcmp(o->uuid, d->uuid) == 0)
			return row_error(c, "uuid %s is also on line %d (device \"%s\")", d->uuid,
					 o->line, o->name);
	}
	return 0;
}

static int add_row(struct csvctx *c)
{
	struct device d = { .port = DEFAULT_PORT, .tunnel_port = DEFAULT_TUNNEL_PORT,
			    .line = c->rec_line };
	int r;

	if (c->ncols && c->nf != c->ncols)
		return row_error(c, "%zu field%s; the header names %zu", c->nf, c->nf == 1 ? "" : "s",
				 c->ncols);
	if (!c->ncols && (c->nf < NREQUIRED || c->nf > NCOLS))
		return row_error(c, "%zu field%s; a row is " COLUMN_LIST, c->nf,
				 c->nf == 1 ? "" : "s");
	for (size_t i = 0; i < c->nf; i++)
		if ((r = set_field(c, &d, c->map[i], i)) != 0)
			goto out;
	if ((r = check_unique(c, &d)) != 0)
		goto out;
	if (c->out->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct device *v = realloc(c->out->v, cap * sizeof(*v));
		if (v == NULL) {
			r = SFTCA_ERR_NOMEM;
			goto out;
		}
		c->out->v = v;
		c->cap = cap;
	}
	c->out->v[c->out->n++] = d;
	d.password = NULL; /* owned by the list now */
	r = 0;
out:
	device_wipe(&d);
	return r;
}

/* Which column the i-th field of the current record names, or -1. */
static int column_named(const struct csvctx *c, size_t i)
{
	for (int j = 0; i < NCOLS && !c->fnul[i] && j < NCOLS; j++)
		if (strcasecmp(c->f[i], column_names[j]) == 0)
			return j;
	return -1;
}

static int read_header(struct csvctx *c)
{
	size_t seen[NCOLS] = { 0 }; /* file column + 1 of each known column */

	if (c->nf > NCOLS)
		return row_error(c, "the header names %zu columns; there are only %d: " COLUMN_LIST,
				 c->nf, NCOLS);
	for (size_t i = 0; i < c->nf; i++) {
		int col = column_named(c, i);
		if (col < 0)
			return row_error(c, "unknown column \"%.*s%s\" in the header (known: " COLUMN_LIST
					    ")",
					 SHOW(c->flen[i]), c->f[i]);
		if (seen[col])
			return row_error(c, "column %s appears twice in the header (columns %zu and %zu)",
					 column_names[col], seen[col], i + 1);
		seen[col] = i + 1;
		c->map[i] = (enum column)col;
	}
	for (int j = 0; j < NREQUIRED; j++)
		if (!seen[j])
			return row_error(c, "the header has no %s column (device_name, ip, "
					    "admin_username and admin_password are required)",
					 column_names[j]);
	c->ncols = c->nf;
	return 0;
}

/* The first record: a header when its first field is device_name, or when
 * every field names a column; else the vendor's positional columns. */
static int first_record(struct csvctx *c)
{
	size_t named = 0, other = 0;

	c->first_done = 1;
	for (size_t i = 0; i < c->nf; i++) {
		if (column_named(c, i) >= 0)
			named++;
		else if (!other)
			other = i + 1;
	}
	if (c->nf > 0 && (column_named(c, 0) == COL_NAME || !other))
		return read_header(c);
	/* A header with a mistyped column would otherwise become a device. The
	 * field is not quoted: in a data row it could be the password. */
	if (named >= 2)
		return row_error(c, "this looks like a header row (%zu fields are column names) "
				    "but field %zu is not a column name (known: " COLUMN_LIST ")",
				 named, other);
	for (int i = 0; i < NCOLS; i++)
		c->map[i] = (enum column)i;
	return add_row(c);
}

static void on_field(void *data, size_t len, void *arg)
{
	struct csvctx *c = arg;
	size_t i = c->nf++, keep = len < FIELD_MAX ? len : FIELD_MAX - 1;

	if (c->r != 0 || i >= NCOLS)
		return;
	c->flen[i] = len;
	c->fnul[i] = len > 0 && memchr(data, '\0', len) != NULL;
	if (keep > 0)
		memcpy(c->f[i], data, keep);
	c->f[i][keep] = '\0';
}

static void raw_free(struct raw_list *l)
{
	for (size_t i = 0; l && i < l->n; i++)
		for (size_t k = 0; k < l->v[i].nf; k++)
			secret_free(l->v[i].f[k], l->v[i].len[k]);
	if (l)
		free(l->v);
}

/* The record just parsed, as it was: a header (no device added), or a row. */
static int keep_raw(struct csvctx *c, int header)
{
	struct raw_list *l = c->raw;
	struct raw_rec *rec;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct raw_rec *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return SFTCA_ERR_NOMEM;
		l->v = v;
		l->cap = cap;
	}
	rec = &l->v[l->n++];
	memset(rec, 0, sizeof(*rec));
	rec->header = header;
	for (size_t i = 0; i < c->nf && i < NCOLS; i++) {
		if ((rec->f[i] = malloc(c->flen[i] + 1)) == NULL)
			return SFTCA_ERR_NOMEM;
		(void)mlock(rec->f[i], c->flen[i] + 1);
		memcpy(rec->f[i], c->f[i], c->flen[i]);
		rec->f[i][c->flen[i]] = '\0';
		rec->len[i] = c->flen[i];
		rec->nf = i + 1;
	}
	return 0;
}

static void on_record(int term, void *arg)
{
	struct csvctx *c = arg;

	size_t before = c->out->n;

	(void)term;
	c->in_record = 0;
	if (c->r == 0)
		c->r = c->first_done ? add_row(c) : first_record(c);
	if (c->r == 0 && c->raw)
		c->r = keep_raw(c, c->out->n == before);
	for (size_t i = 0; i < c->nf && i < NCOLS; i++)
		OPENSSL_cleanse(c->f[i], c->flen[i] < FIELD_MAX ? c->flen[i] : FIELD_MAX);
	c->nf = 0;
}

static int csv_failure(struct csvctx *c, struct csv_parser *p, int line)
{
	c->rec_line = line;
	if (csv_error(p) == CSV_EPARSE)
		return row_error(c, "a '\"' inside an unquoted field, after a closing quote, or a "
				    "quote never closed: quote the whole field and double each '\"' "
				    "in it");
	return row_error(c, "%s", csv_strerror(csv_error(p)));
}

/* devices_parse, and with raw every record as it was (then also the
 * column map of the header into map). */
static int parse_text(const char *name, const char *text, size_t len, struct device_list *out,
		      struct raw_list *raw, enum column map[NCOLS])
{
	struct csv_parser p;
	struct csvctx *c = NULL;
	int r = SFTCA_ERR_NOMEM, csv_ready = 0;
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto out;
	(void)mlock(c, sizeof(*c)); /* its field buffers hold passwords for a moment */
	c->name = name;
	c->out = out;
	c->raw = raw;
	c->line = 1;
	if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0)
		goto out;
	csv_ready = 1;
	csv_set_realloc_func(&p, wiping_realloc);
	csv_set_free_func(&p, wiping_free);
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	/* One byte at a time, so that a record's line is the line it starts
	 * on, even after quoted fields that hold line breaks. */
	for (; i < len && c->r == 0; i++) {
		unsigned char b = (unsigned char)text[i];
		if (!c->in_record && b != ' ' && b != '\t' && b != '\r' && b != '\n') {
			c->in_record = 1;
			c->rec_line = c->line;
		}
		if (csv_parse(&p, text + i, 1, on_field, on_record, c) != 1 && c->r == 0)
			c->r = csv_failure(c, &p, c->line);
		if (b == '\n' || (b == '\r' && (i + 1 == len || text[i + 1] != '\n')))
			c->line++;
	}
	if (c->r == 0 && csv_fini(&p, on_field, on_record, c) != 0 && c->r == 0)
		c->r = csv_failure(c, &p, c->rec_line);
	if ((r = c->r) != 0)
		goto out;
	if (out->n == 0) {
		log_error("%s: no devices in it (a row is " COLUMN_LIST ")", name);
		r = SFTCA_ERR_INVALID;
		goto out;
	}
	if (map)
		memcpy(map, c->map, sizeof(c->map));
	r = 0;
out:
	if (csv_ready)
		csv_free(&p);
	if (c != NULL) {
		OPENSSL_cleanse(c, sizeof(*c));
		free(c); /* left locked: see device_wipe() */
	}
	if (r != 0)
		devices_free(out);
	return r;
}

int devices_parse(const char *name, const char *text, size_t len, struct device_list *out)
{
	return parse_text(name, text, len, out, NULL, NULL);
}

/* A growing output buffer that holds passwords: wiped when it moves. */
struct wbuf {
	char *p;
	size_t len, cap;
	int r;
};

static void wb_put(struct wbuf *b, const char *data, size_t n)
{
	char *q;

	if (b->r != 0)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		if ((q = malloc(cap)) == NULL) {
			b->r = SFTCA_ERR_NOMEM;
			return;
		}
		if (b->p)
			memcpy(q, b->p, b->len);
		(void)mlock(q, cap);
		secret_free(b->p, b->cap - 1); /* wipes cap bytes */
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* One field: as it is where nothing in it needs quoting, else quoted by
 * libcsv (each '"' doubled). Blanks at either end are quoted too: libcsv
 * trims them from an unquoted field. */
static void wb_field(struct wbuf *b, const char *v, size_t n, int first)
{
	char *q;
	size_t qn;

	if (!first)
		wb_put(b, ",", 1);
	if (n == 0 || (!memchr(v, ',', n) && !memchr(v, '"', n) && !memchr(v, '\r', n) &&
		       !memchr(v, '\n', n) && v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' &&
		       v[n - 1] != '\t')) {
		wb_put(b, v, n);
		return;
	}
	qn = 2 * n + 2;
	if ((q = malloc(qn)) == NULL) {
		b->r = SFTCA_ERR_NOMEM;
		return;
	}
	qn = csv_write(q, qn, v, n);
	(void)mlock(q, 2 * n + 2);
	wb_put(b, q, qn);
	secret_free(q, 2 * n + 1);
}

int devices_rewrite(const char *name, const char *text, size_t len, const char *const *uuids,
		    size_t n, char **out, size_t *outlen)
{
	struct device_list dl = { 0 };
	struct raw_list raw = { 0 };
	struct wbuf b = { 0 };
	enum column map[NCOLS];
	size_t width = 5, ucol = COL_UUID, k = 0, first = 0;
	int r;

	*out = NULL;
	*outlen = 0;
	if ((r = parse_text(name, text, len, &dl, &raw, map)) != 0)
		goto out;
	r = SFTCA_ERR_INVALID;
	if (dl.n != n) {
		log_error("%s changed while it was read (%zu devices, then %zu)", name, n, dl.n);
		goto out;
	}
	if (raw.n > 0 && raw.v[0].header) {
		/* The header as it was, gaining a uuid column at the end. */
		width = raw.v[0].nf;
		ucol = width;
		for (size_t i = 0; i < raw.v[0].nf; i++) {
			wb_field(&b, raw.v[0].f[i], raw.v[0].len[i], i == 0);
			if (map[i] == COL_UUID)
				ucol = i;
		}
		if (ucol == width) {
			wb_field(&b, column_names[COL_UUID], strlen(column_names[COL_UUID]), 0);
			width++;
		}
		first = 1;
	} else {
		/* The vendor's positional columns: a header naming them, as many
		 * as the widest row has (the uuid column at least). */
		for (size_t i = 0; i < raw.n; i++)
			if (raw.v[i].nf > width)
				width = raw.v[i].nf;
		for (size_t i = 0; i < width; i++)
			wb_field(&b, column_names[i], strlen(column_names[i]), i == 0);
	}
	wb_put(&b, "\n", 1);
	for (size_t i = first; i < raw.n; i++, k++) {
		const struct raw_rec *rec = &raw.v[i];
		for (size_t f = 0; f < width; f++) {
			if (f == ucol && uuids[k])
				wb_field(&b, uuids[k], strlen(uuids[k]), f == 0);
			else if (f < rec->nf)
				wb_field(&b, rec->f[f], rec->len[f], f == 0);
			else
				wb_field(&b, "", 0, f == 0);
		}
		wb_put(&b, "\n", 1);
	}
	if ((r = b.r) != 0)
		goto out;
	*out = b.p;
	*outlen = b.len;
	b.p = NULL;
	r = 0;
out:
	if (b.p)
		secret_free(b.p, b.cap - 1);
	raw_free(&raw);
	devices_free(&dl);
	return r;
}

int devices_load(const char *path, struct device_list *out)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = file_read_all(path, DEVICES_MAX_FILE, &text, &len)) != 0)
		goto out;
	(void)mlock(text, len + 1);
	if (stat(path, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
		log_warn("%s holds passwords but is readable by group or others (mode %04o): "
			 "chmod 600 %s",
			 path, (unsigned)(st.st_mode & 07777), path);
	r = devices_parse(path, text, len, out);
out:
	secret_free(text, len); /* wipes the whole text, passwords included */
	return r;
}
