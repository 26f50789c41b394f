#include "layout.h"

#include "errors.h"
#include "log.h"
#include "uuid.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* snprintf into buf, SFTCA_ERR_INVALID when it did not fit. */
static int __attribute__((format(printf, 3, 4))) put(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? SFTCA_ERR_INVALID : 0;
}

int layout_ca_root(const char *root, char *buf, size_t len)
{
	return put(buf, len, "%s/etc/sf/ca_root", root);
}

int layout_self_dir(const char *root, char *buf, size_t len)
{
	return put(buf, len, "%s/etc/sf/keys", root);
}

int layout_peer_pair_dir(const char *root, const char *uuid, char *buf, size_t len)
{
	char flat[4200];
	struct stat st;

	if (put(flat, sizeof(flat), "%s/var/sf/peers/%s/" LAYOUT_KEY, root, uuid) != 0 ||
	    put(buf, len, "%s/var/sf/peers/%s/certs_pushed", root, uuid) != 0)
		return SFTCA_ERR_INVALID;
	/* Some FMC versions keep the pair directly in the peer directory. */
	if (stat(buf, &st) != 0 && stat(flat, &st) == 0)
		return put(buf, len, "%s/var/sf/peers/%s", root, uuid);
	return 0;
}

int layout_file(const char *dir, const char *name, char *buf, size_t len)
{
	return put(buf, len, "%s/%s", dir, name);
}

const char *layout_on_fmc(const char *root, const char *path)
{
	size_t n = strlen(root);

	while (n > 0 && root[n - 1] == '/')
		n--;
	if (strncmp(path, root, n) != 0 || path[n] != '/')
		return path;
	path += n;
	while (path[0] == '/' && path[1] == '/')
		path++;
	return path;
}

int layout_check_peer(const char *root, const char *uuid, struct sftca_msg *m)
{
	char path[4200];
	struct stat st;

	for (int i = 0; i < 2; i++) {
		if (put(path, sizeof(path), "%s/var/sf/peers/%s%s", root, uuid, i ? "/certs_pushed" : "") != 0)
			return msg_fail(m, SFTCA_ERR_INVALID, "%s/var/sf/peers/%s: path too long", root, uuid);
		if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
			return msg_fail(m, SFTCA_ERR_INVALID,
					"%s is a symbolic link: refused (a %s must be a real directory; "
					"replace the link with one)",
					path, i ? "certs_pushed" : "peer directory");
	}
	return 0;
}

static int cmp_uuid(const void *a, const void *b)
{
	return strcmp(a, b);
}

int layout_check_tree(const char *root, struct sftca_msg *m)
{
	static const char *const dirs[] = { "etc/sf/ca_root", "var/sf/peers" };
	char path[4300];
	struct stat st;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (put(path, sizeof(path), "%s/%s", root, dirs[i]) == 0 && stat(path, &st) == 0 &&
		    S_ISDIR(st.st_mode))
			return 0;
	msg_set(m, "%s is not an FMC tree: it has neither etc/sf/ca_root/ nor var/sf/peers/ (is --root "
		"the FMC's filesystem root, or a copy of it?); nothing written",
		root);
	return SFTCA_ERR_NOT_FOUND;
}

int layout_list_peers(const char *root, char (**uuids)[40], size_t *n)
{
	char path[4200];
	char(*v)[40] = NULL;
	size_t cap = 0, cnt = 0;
	struct dirent *e;
	DIR *d;

	*uuids = NULL;
	*n = 0;
	if (put(path, sizeof(path), "%s/var/sf/peers", root) != 0) {
		log_error("%s/var/sf/peers: path too long", root);
		return SFTCA_ERR_INVALID;
	}
	if ((d = opendir(path)) == NULL) {
		log_error("%s: no peer directory (is --root the FMC's filesystem root?)", path);
		return SFTCA_ERR_NOT_FOUND;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		char sub[4300];

		if (!uuid_is_canonical(e->d_name))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub) ||
		    stat(sub, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		if (cnt == cap) {
			char(*nv)[40] = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));
			if (nv == NULL) {
				free(v);
				closedir(d);
				return SFTCA_ERR_NOMEM;
			}
			v = nv;
		}
		memcpy(v[cnt++], e->d_name, UUID_STR_LEN + 1); /* canonical: exactly 36 + NUL */
	}
	closedir(d);
	qsort(v, cnt, sizeof(*v), cmp_uuid);
	*uuids = v;
	*n = cnt;
	return 0;
}
