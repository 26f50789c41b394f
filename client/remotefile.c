#include "remotefile.h"

#include "errors.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing shell command: many files make it longer than any fixed buffer. */
struct sbuf {
	char *s;
	size_t len, cap;
	int oom;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || b->len + (size_t)n + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 1024) + (n > 0 ? (size_t)n : 0);
		char *s = n < 0 ? NULL : realloc(b->s, cap);
		if (s == NULL) {
			b->oom = 1;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

int rfile_tmp_path(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL || slash[1] == '\0')
		return -1;
	if ((size_t)snprintf(buf, len, "%.*s/.%s.sftca-tmp", (int)(slash - path), path, slash + 1) >= len)
		return -1;
	return 0;
}

static const char *base(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* The directory of path, quoted for sh. */
static int qdir_of(const char *path, char *qdir, size_t len)
{
	char dir[4200];
	const char *slash = strrchr(path, '/');

	if (slash == NULL || (size_t)(slash - path) >= sizeof(dir))
		return -1;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	return sh_quote(dir[0] ? dir : "/", qdir, len);
}

/* "'path'" of file i and of its upload, quoted for sh. */
static int quoted(const struct rfile *f, char *qpath, char *qtmp, size_t len)
{
	char tmp[4200];

	return rfile_tmp_path(f->path, tmp, sizeof(tmp)) != 0 || sh_quote(f->path, qpath, len) != 0 ||
			       sh_quote(tmp, qtmp, len) != 0
		       ? -1
		       : 0;
}

int rfile_upload(struct devconn *c, const struct rfile *f, size_t n, struct sftca_msg *m)
{
	struct sftca_msg err = { { 0 } };
	char tmp[4200];

	for (size_t i = 0; i < n; i++) {
		if (rfile_tmp_path(f[i].path, tmp, sizeof(tmp)) != 0) {
			msg_set(m, "upload of %s: the path is too long", f[i].path);
			return -1;
		}
		/* Private until rfile_replace gives it its mode. */
		if (devconn_put(c, tmp, f[i].data, f[i].len, 0600, &err) != 0) {
			msg_set(m, "upload of %s: %s", base(f[i].path), err.text);
			return -1;
		}
	}
	return 0;
}

/* Run b's command; its output into out. */
static int run(struct devconn *c, struct sbuf *b, char *out, size_t outlen, int *status,
	       struct sftca_msg *m)
{
	int r;

	if (b->oom || b->s == NULL) {
		free(b->s);
		msg_set(m, "out of memory building a command");
		return -1;
	}
	r = devconn_run(c, b->s, out, outlen, status, m);
	free(b->s);
	return r;
}

int rfile_check(struct devconn *c, const struct rfile *f, size_t n, struct sftca_msg *m)
{
	struct sbuf b = { 0 };
	char qpath[4400], qtmp[4400], tmp[4200], *out;
	size_t outlen = 256 * (n + 1);
	int status;

	sb_add(&b, "sha256sum");
	for (size_t i = 0; i < n; i++) {
		if (quoted(&f[i], qpath, qtmp, sizeof(qpath)) != 0) {
			free(b.s);
			msg_set(m, "%s: the path is too long", f[i].path);
			return -1;
		}
		sb_add(&b, " %s", qtmp);
	}
	sb_add(&b, " 2>/dev/null; exit 0");
	if ((out = malloc(outlen)) == NULL) {
		free(b.s);
		msg_set(m, "out of memory");
		return -1;
	}
	if (run(c, &b, out, outlen, &status, m) != 0) {
		free(out);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char line[4400];
		if (rfile_tmp_path(f[i].path, tmp, sizeof(tmp)) != 0)
			continue;
		snprintf(line, sizeof(line), "%s  %s", f[i].sha, tmp);
		if (strstr(out, line) == NULL) {
			msg_set(m, "%s arrived damaged (hash mismatch); nothing replaced", base(f[i].path));
			free(out);
			return -1;
		}
	}
	free(out);
	return 0;
}

int rfile_replace(struct devconn *c, const struct rfile *f, size_t n, const char *stamp,
		  const char *mark, struct sftca_msg *m)
{
	struct sbuf b = { 0 };
	char qpath[4400], qtmp[4400], qdir[4400], out[512];
	int status;

	sb_add(&b, "trap '' HUP PIPE; ");
	for (size_t i = 0; i < n; i++) {
		if (quoted(&f[i], qpath, qtmp, sizeof(qpath)) != 0) {
			free(b.s);
			msg_set(m, "%s: the path is too long", f[i].path);
			return -1;
		}
		/* In the file's directory, so that an error names the upload as
		 * .NAME.sftca-tmp; the rest of the command uses full paths. */
		if (qdir_of(f[i].path, qdir, sizeof(qdir)) != 0) {
			free(b.s);
			msg_set(m, "%s: the path is too long", f[i].path);
			return -1;
		}
		sb_add(&b, "cd %s || exit 3; ", qdir);
		if (f[i].want.present)
			sb_add(&b, "chown %lu:%lu .%s.sftca-tmp 2>&1 && ", f[i].want.uid, f[i].want.gid,
			       base(f[i].path));
		sb_add(&b, "chmod %o .%s.sftca-tmp 2>&1 || exit 5\n", f[i].want.mode, base(f[i].path));
	}
	sb_add(&b, "for f in");
	for (size_t i = 0; i < n; i++)
		if (quoted(&f[i], qpath, qtmp, sizeof(qpath)) == 0)
			sb_add(&b, " \\\n%s", qpath);
	sb_add(&b, "; do [ -e \"$f\" ] || continue; b=\"$f.backup.%s\"; n=1; "
		   "while [ -e \"$b\" ]; do b=\"$f.backup.%s.$n\"; n=$((n+1)); done; "
		   "ln \"$f\" \"$b\" 2>/dev/null || cp -p \"$f\" \"$b\" || exit 4; done; true%s",
	       stamp, stamp, mark);
	for (size_t i = 0; i < n; i++)
		if (quoted(&f[i], qpath, qtmp, sizeof(qpath)) == 0)
			sb_add(&b, " &&\nmv -f %s %s", qtmp, qpath);
	sb_add(&b, " && sync");
	if (run(c, &b, out, sizeof(out), &status, m) != 0) {
		char why[sizeof(m->text)];
		snprintf(why, sizeof(why), "%s", m->text);
		msg_set(m, "replacing the files: %s", why);
		return -1;
	}
	if (status == 5) {
		msg_set(m, "nothing replaced: the mode and owner the device has for the files cannot be "
			"given to the new ones: %.200s", out);
		return -1;
	}
	if (status != 0) {
		msg_set(m, "replacing the files failed (status %d%s): %.200s", status,
			status == 4 ? ", backup not possible" : "", out);
		return -1;
	}
	return 0;
}

void rfile_cleanup(struct devconn *c, const struct rfile *f, size_t n)
{
	struct sftca_msg err = { { 0 } };
	struct sbuf b = { 0 };
	char qpath[4400], qtmp[4400], out[64];
	int status;

	sb_add(&b, "rm -f");
	for (size_t i = 0; i < n; i++)
		if (quoted(&f[i], qpath, qtmp, sizeof(qpath)) == 0)
			sb_add(&b, " %s", qtmp);
	if (run(c, &b, out, sizeof(out), &status, &err) != 0)
		log_debug("temporary files not removed: %s", err.text);
}
