/* FAILED_PUSH files (see failedpush.h): whitespace-separated words, one
 * line per file that did not reach a device. No passwords ever go here. */
#include "failedpush.h"

#include "atomicfile.h"
#include "errors.h"
#include "fileio.h"
#include "layout.h"
#include "log.h"
#include "uuid.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAILEDPUSH_MAX_FILE (16u << 20)
#define FAILEDPUSH_FIELDS 5
#define FIELD_LIST "FTD_UUID FTD_NAME FTD_IP SOURCE_PATH_ON_FMC DESTINATION_PATH_ON_FTD"
#define SHOWN 64

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* ---- reading ---- */

struct word {
	const char *s;
	size_t len;
};

static int line_error(const char *name, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int line_error(const char *name, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s line %d: %s", name, line, msg);
	return SFTCA_ERR_INVALID;
}

/* Split [s, end) at blanks into up to max words; returns how many there are
 * (possibly more than max, which are counted but not stored). */
static size_t split_words(const char *s, const char *end, struct word *w, size_t max)
{
	size_t n = 0;

	for (;;) {
		const char *start;
		while (s < end && is_blank(*s))
			s++;
		if (s == end)
			return n;
		start = s;
		while (s < end && !is_blank(*s))
			s++;
		if (n < max)
			w[n] = (struct word){ start, (size_t)(s - start) };
		n++;
	}
}

/* Copy a word into a buffer of size bytes, or say why it does not fit. */
static int copy_word(const char *name, int line, const char *what, const struct word *w, char *dst,
		     size_t size)
{
	if (w->len >= size)
		return line_error(name, line, "%s is %zu bytes; at most %zu allowed", what, w->len,
				  size - 1);
	memcpy(dst, w->s, w->len);
	dst[w->len] = '\0';
	return 0;
}

/* Fold one line's device into the list: lines of one UUID are one entry. */
static int merge_line(const char *name, int line, const struct word *w, struct failed_list *l,
		      size_t *cap)
{
	struct failed_device d;
	int r;

	d.uuid[0] = '\0';
	if (w[0].len == UUID_STR_LEN) {
		memcpy(d.uuid, w[0].s, UUID_STR_LEN);
		d.uuid[UUID_STR_LEN] = '\0';
	}
	if (!uuid_is_canonical(d.uuid))
		return line_error(name, line, "FTD_UUID \"%.*s%s\" is not a canonical lowercase UUID",
				  (int)(w[0].len < SHOWN ? w[0].len : SHOWN), w[0].s,
				  w[0].len > SHOWN ? "..." : "");
	if ((r = copy_word(name, line, "FTD_NAME", &w[1], d.name, sizeof(d.name))) != 0 ||
	    (r = copy_word(name, line, "FTD_IP", &w[2], d.ip, sizeof(d.ip))) != 0)
		return r;
	for (size_t i = 0; i < l->n; i++) {
		const struct failed_device *o = &l->v[i];
		if (strcmp(o->uuid, d.uuid) != 0)
			continue;
		if (strcmp(o->name, d.name) != 0 || strcmp(o->ip, d.ip) != 0)
			return line_error(name, line,
					  "device %s is \"%s\" at %s here but \"%s\" at %s earlier",
					  d.uuid, d.name, d.ip, o->name, o->ip);
		return 0;
	}
	if (l->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		struct failed_device *v = realloc(l->v, ncap * sizeof(*v));
		if (v == NULL)
			return SFTCA_ERR_NOMEM;
		l->v = v;
		*cap = ncap;
	}
	l->v[l->n++] = d;
	return 0;
}

int failedpush_parse(const char *name, const char *text, size_t len, struct failed_list *out)
{
	const char *s = text, *end = text + len;
	size_t cap = 0;
	int line = 0, r = 0;

	memset(out, 0, sizeof(*out));
	while (s < end && r == 0) {
		const char *eol = memchr(s, '\n', (size_t)(end - s));
		struct word w[FAILEDPUSH_FIELDS];
		size_t n;

		if (eol == NULL)
			eol = end;
		line++;
		n = split_words(s, eol, w, FAILEDPUSH_FIELDS);
		if (memchr(s, '\0', (size_t)(eol - s)) != NULL)
			r = line_error(name, line, "contains a NUL byte");
		else if (n == 0 || w[0].s[0] == '#')
			; /* blank or a comment */
		else if (n != FAILEDPUSH_FIELDS)
			r = line_error(name, line, "%zu field%s, expected %d: " FIELD_LIST, n,
				       n == 1 ? "" : "s", FAILEDPUSH_FIELDS);
		else
			r = merge_line(name, line, w, out, &cap);
		s = eol + 1;
	}
	if (r != 0)
		failedpush_free(out);
	return r;
}

int failedpush_load(const char *path, struct failed_list *out)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = file_read_all(path, FAILEDPUSH_MAX_FILE, &text, &len)) != 0)
		return r;
	r = failedpush_parse(path, text, len, out);
	free(text);
	return r;
}

void failedpush_free(struct failed_list *l)
{
	if (l == NULL)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* The entry whose field at off equals key. NULL when there is none (*any
 * = 0) or when the matches are different devices (*any = 1). */
static const struct failed_device *find_by(const struct failed_list *l, const char *key,
					   size_t off, int *any)
{
	const struct failed_device *hit = NULL;

	*any = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp((const char *)&l->v[i] + off, key) != 0)
			continue;
		*any = 1;
		if (hit != NULL && strcmp(hit->uuid, l->v[i].uuid) != 0)
			return NULL; /* ambiguous */
		hit = &l->v[i];
	}
	return hit;
}

const struct failed_device *failedpush_find(const struct failed_list *l, const char *uuid,
					    const char *name, const char *ip)
{
	const struct failed_device *hit;
	int any;

	if (l == NULL)
		return NULL;
	if (uuid != NULL && uuid[0])
		return find_by(l, uuid, offsetof(struct failed_device, uuid), &any);
	if (name != NULL && name[0]) {
		hit = find_by(l, name, offsetof(struct failed_device, name), &any);
		if (any)
			return hit;
	}
	if (ip != NULL && ip[0])
		return find_by(l, ip, offsetof(struct failed_device, ip), &any);
	return NULL;
}

/* ---- writing ---- */

struct fp_entry {
	char uuid[40];
	char name[128];
	char ip[64];
	char *bundle_src, *pair_src_dir, *dst_dir;
};

struct failedpush_writer {
	pthread_mutex_t lock;
	char dir[4096];
	char file[256];
	struct fp_entry *v;
	size_t n, cap;
};

struct failedpush_writer *failedpush_open(const char *path)
{
	struct failedpush_writer *w;
	const char *slash = strrchr(path, '/');
	const char *file = slash ? slash + 1 : path;
	size_t dirlen = slash ? (size_t)(slash - path) : 0;

	if (file[0] == '\0' || strlen(file) >= sizeof(w->file) || dirlen >= sizeof(w->dir)) {
		log_error("FAILED_PUSH file %s: not a usable file name", path);
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	if (pthread_mutex_init(&w->lock, NULL) != 0) {
		free(w);
		return NULL;
	}
	if (slash == NULL)
		snprintf(w->dir, sizeof(w->dir), ".");
	else if (dirlen == 0)
		snprintf(w->dir, sizeof(w->dir), "/");
	else
		snprintf(w->dir, sizeof(w->dir), "%.*s", (int)dirlen, path);
	snprintf(w->file, sizeof(w->file), "%s", file);
	return w;
}

/* 1 when s is a non-empty word with nothing the format would split. */
static int is_word(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static void entry_clear(struct fp_entry *e)
{
	free(e->bundle_src);
	free(e->pair_src_dir);
	free(e->dst_dir);
	e->bundle_src = e->pair_src_dir = e->dst_dir = NULL;
}

int failedpush_add(struct failedpush_writer *w, const char *uuid, const char *name, const char *ip,
		   const char *bundle_src, const char *pair_src_dir, const char *dst_dir)
{
	struct fp_entry e = { 0 };
	size_t i;
	int r = SFTCA_ERR_INVALID;

	if (w == NULL || !uuid_is_canonical(uuid) || !is_word(ip) || strlen(ip) >= sizeof(e.ip) ||
	    !is_word(bundle_src) || !is_word(pair_src_dir) || !is_word(dst_dir) || name == NULL ||
	    strlen(name) >= sizeof(e.name)) {
		log_error("FAILED_PUSH: cannot record device %s (%s): it needs a canonical UUID, "
			  "an address and paths without blanks, and a name under 128 bytes",
			  uuid ? uuid : "?", name ? name : "?");
		return SFTCA_ERR_INVALID;
	}
	snprintf(e.uuid, sizeof(e.uuid), "%s", uuid);
	snprintf(e.ip, sizeof(e.ip), "%s", ip);
	/* Names may hold blanks; the line must stay five words. */
	snprintf(e.name, sizeof(e.name), "%s", name[0] ? name : "_");
	for (char *p = e.name; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			*p = '_';
	e.bundle_src = strdup(bundle_src);
	e.pair_src_dir = strdup(pair_src_dir);
	e.dst_dir = strdup(dst_dir);
	if (!e.bundle_src || !e.pair_src_dir || !e.dst_dir) {
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	pthread_mutex_lock(&w->lock);
	for (i = 0; i < w->n && strcmp(w->v[i].uuid, uuid) != 0; i++)
		;
	if (i == w->n && w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct fp_entry *v = realloc(w->v, cap * sizeof(*v));
		if (v == NULL) {
			pthread_mutex_unlock(&w->lock);
			r = SFTCA_ERR_NOMEM;
			goto out;
		}
		w->v = v;
		w->cap = cap;
	}
	if (i == w->n)
		w->n++;
	else
		entry_clear(&w->v[i]); /* the same device again: the latest wins */
	w->v[i] = e;
	pthread_mutex_unlock(&w->lock);
	e = (struct fp_entry){ 0 }; /* owned by the writer now */
	r = 0;
out:
	entry_clear(&e);
	return r;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct fp_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->uuid, y->uuid);
}

/* dir + "/" + file, without doubling a trailing slash. */
static void print_path(FILE *f, const char *dir, const char *file)
{
	size_t n = strlen(dir);

	fprintf(f, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", file);
}

/* The vendor's order: bundle, key, certificate. */
static void print_entry(FILE *f, const struct fp_entry *e)
{
	static const char *const files[] = { LAYOUT_BUNDLE, LAYOUT_KEY, LAYOUT_CERT };

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		fprintf(f, "%s %s %s ", e->uuid, e->name, e->ip);
		if (i == 0)
			fprintf(f, "%s", e->bundle_src);
		else
			print_path(f, e->pair_src_dir, files[i]);
		fputc(' ', f);
		print_path(f, e->dst_dir, files[i]);
		fputc('\n', f);
	}
}

int failedpush_close(struct failedpush_writer *w, int clear_stale, int *written)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = NULL;
	char stamp[32];
	int r = 0;

	if (written != NULL)
		*written = 0;
	if (w == NULL)
		return 0;
	pthread_mutex_lock(&w->lock);
	if (w->n == 0) {
		/* Nothing failed: a list left by an earlier run is no longer
		 * true, and a --retry of it would restart healthy devices. */
		int moved = 0;

		if (!clear_stale)
			goto out;
		af_backup_stamp(stamp);
		if ((r = af_retire(w->dir, w->file, stamp, &moved)) != 0)
			log_error("the previous FAILED_PUSH %s/%s could not be moved aside: %s",
				  w->dir, w->file, sftca_strerror(r));
		else if (moved && written != NULL)
			*written = FAILEDPUSH_CLEARED;
		goto out;
	}
	qsort(w->v, w->n, sizeof(w->v[0]), entry_cmp);
	if ((f = open_memstream(&text, &len)) == NULL) {
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < w->n; i++)
		print_entry(f, &w->v[i]);
	if (fclose(f) != 0) {
		f = NULL;
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	f = NULL;
	af_backup_stamp(stamp);
	/* 0600: it names devices and addresses. A previous file is kept as a
	 * backup: it may be the --retry input being replaced. */
	if ((r = af_write(w->dir, &(struct af_file){ w->file, text, len, 0600 }, stamp)) != 0) {
		log_error("FAILED_PUSH %s/%s could not be written: %s", w->dir, w->file,
			  sftca_strerror(r));
		goto out;
	}
	if (written != NULL)
		*written = FAILEDPUSH_WRITTEN;
out:
	free(text);
	for (size_t i = 0; i < w->n; i++)
		entry_clear(&w->v[i]);
	free(w->v);
	pthread_mutex_unlock(&w->lock);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return r;
}
