#include "layout.h"

#include "errors.h"
#include "log.h"
#include "uuid.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void layout_ca_root(const char *root, char *buf, size_t len)
{
	snprintf(buf, len, "%s/etc/sf/ca_root", root);
}

void layout_self_dir(const char *root, char *buf, size_t len)
{
	snprintf(buf, len, "%s/etc/sf/keys", root);
}

void layout_peer_pair_dir(const char *root, const char *uuid, char *buf, size_t len)
{
	char flat[4200];
	struct stat st;

	snprintf(flat, sizeof(flat), "%s/var/sf/peers/%s/" LAYOUT_KEY, root, uuid);
	snprintf(buf, len, "%s/var/sf/peers/%s/certs_pushed", root, uuid);
	/* Some FMC versions keep the pair directly in the peer directory. */
	if (stat(buf, &st) != 0 && stat(flat, &st) == 0)
		snprintf(buf, len, "%s/var/sf/peers/%s", root, uuid);
}

int layout_check_peer(const char *root, const char *uuid, struct sftca_msg *m)
{
	char path[4200];
	struct stat st;

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/var/sf/peers/%s%s", root, uuid, i ? "/certs_pushed" : "");
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

int layout_list_peers(const char *root, char (**uuids)[40], size_t *n)
{
	char path[4200];
	char(*v)[40] = NULL;
	size_t cap = 0, cnt = 0;
	struct dirent *e;
	DIR *d;

	*uuids = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s/var/sf/peers", root);
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
