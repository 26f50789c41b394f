/* sftca fmc pull / commit: the FMC side of a renewal from a jump host.
 * pull backs the FMC's certificate files up on the FMC and copies them into
 * a local tree, remembering their hashes; commit writes back what changed
 * locally (remotefile.c, as push does for a device), refusing when the
 * FMC's files changed since the pull, then restarts sftunnel on the FMC. */
#include "atomicfile.h"
#include "client.h"
#include "connopts.h"
#include "devconn.h"
#include "devices.h"
#include "devparse.h"
#include "errors.h"
#include "fileio.h"
#include "identify.h"
#include "log.h"
#include "remotefile.h"
#include "peerfiles.h"
#include "push.h"
#include "textclean.h"
#include "trust.h"
#include "treelock.h"
#include "x509util.h"

#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MANIFEST ".sftca-fmc-pull.json"
#define FMC_PEERS "/var/sf/peers"
#define MAX_FILE (1 << 20)
#define LIST_END "SFTCA-LIST-END"

/* The files a renewal touches on an FMC, as sh globs (the peers' in both
 * places the vendor keeps a pair). */
static const char *const fileset[] = {
	"/etc/sf/ca_root/cacert.pem",
	"/etc/sf/ca_root/crl.pem",
	"/etc/sf/keys/sftunnel-cert.pem",
	"/etc/sf/keys/sftunnel-key.pem",
	FMC_PEERS "/*/certs_pushed/sftunnel-cert.pem",
	FMC_PEERS "/*/certs_pushed/sftunnel-key.pem",
	FMC_PEERS "/*/sftunnel-cert.pem",
	FMC_PEERS "/*/sftunnel-key.pem",
};
#define NSET (sizeof(fileset) / sizeof(fileset[0]))

struct fmc_args {
	struct conn_args conn;
	const char *fmc, *root, *restart_cmd;
	int dry_run, commit;
};

/* One file of the set: where, what, and its mode and owner. */
struct fent {
	char path[512];
	char sha[65];
	struct shell_stat st;
	char *data;                /* commit: the local bytes to write */
	size_t len;
};

struct flist {
	struct fent *v;
	size_t n, cap;
};

static void flist_free(struct flist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].data)
			OPENSSL_cleanse(l->v[i].data, l->v[i].len);
		free(l->v[i].data);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static struct fent *flist_add(struct flist *l, const char *path)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct fent *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	snprintf(l->v[l->n].path, sizeof(l->v[0].path), "%s", path);
	return &l->v[l->n++];
}

static struct fent *flist_find(const struct flist *l, const char *path)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].path, path) == 0)
			return &l->v[i];
	return NULL;
}

/* Only plain names, and only the set's: they go into shell commands and
 * local paths, and an FMC that lists anything else (another file, a "..")
 * must not get it written on this host or sent back. */
static int path_ok(const char *p)
{
	int in_set = 0;

	if (strstr(p, "/../") || strstr(p, "/./"))
		return 0;
	/* FNM_PATHNAME: a '*' is one directory; FNM_PERIOD: never "." or "..". */
	for (size_t i = 0; i < NSET && !in_set; i++)
		in_set = fnmatch(fileset[i], p, FNM_PATHNAME | FNM_PERIOD) == 0;
	if (!in_set)
		return 0;
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-' || *p == '/'))
			return 0;
	return 1;
}

static void help(FILE *f)
{
	fprintf(f,
		"usage: sftca fmc pull   --fmc ADDR --root DIR --ca ID --devices devices.csv [--dry-run]\n"
		"                        [--known-hosts FILE] [--accept-new-host-keys] [--identity FILE]\n"
		"                        [--shell ftd|direct] [--identity-file PATH] [--ssh-timeout S]\n"
		"                        [--device-timeout S]\n"
		"       sftca fmc commit --fmc ADDR --root DIR --ca ID --devices devices.csv [--dry-run]\n"
		"                        [--restart-cmd CMD] [same connection options]\n"
		"\n"
		"The FMC's files over SSH, from a jump host. The FMC's login is the devices.csv row whose\n"
		"ip or device_name is ADDR (the vendor's list starts with the FMC). Before anything else\n"
		"the FMC must prove it is the CA's: its UUID (ftd: 'show version'; direct: --identity-file,\n"
		"else the CN of /etc/sf/ca_root/cacert.pem) must be --ca ID.\n"
		"pull: back up /etc/sf/ca_root, /etc/sf/keys and every peer's sftunnel pair on the FMC\n"
		"(/var/tmp/sftca-fmc-backup.<UTC stamp>.tar.gz, mode 0600, its path printed), then copy\n"
		"/etc/sf/ca_root/{cacert,crl}.pem, /etc/sf/keys/sftunnel-{cert,key}.pem and\n"
		"/var/sf/peers/*/[certs_pushed/]sftunnel-{cert,key}.pem into DIR (same layout) and record\n"
		"path, sha256, mode and owner of each in DIR/" MANIFEST ".\n"
		"commit: refuse (naming each file) when the FMC's files differ from the manifest;\n"
		"otherwise write back the files whose local hash differs from it (uploaded beside, hash\n"
		"checked, old file kept as NAME.backup.<stamp>, renamed in one command, mode and owner as\n"
		"before), restart sftunnel on the FMC (default '" PUSH_DEFAULT_RESTART "'), and\n"
		"update the manifest.\n"
		"  --dry-run   identify and compare, say what would be fetched or written; nothing is\n"
		"              written (locally or on the FMC), no backup, no restart\n");
	conn_help(f);
	global_help(f);
}

/* The command line; -1 to go on, else an exit code. */
static int parse(int argc, char **argv, struct fmc_args *a)
{
	static const struct option opts[] = {
		GLOBAL_LONG_OPTS,
		CONN_LONG_OPTS,
		{ "fmc", required_argument, NULL, 'f' },
		{ "root", required_argument, NULL, 'r' },
		{ "restart-cmd", required_argument, NULL, 'x' },
		{ "dry-run", no_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, rc;

	memset(a, 0, sizeof(*a));
	conn_args_init(&a->conn, FMC_PEERS);
	a->restart_cmd = PUSH_DEFAULT_RESTART;
	if (argc < 2 || (strcmp(argv[1], "pull") != 0 && strcmp(argv[1], "commit") != 0)) {
		if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
			help(stdout);
			return EXIT_OK;
		}
		help(stderr);
		return EXIT_USAGE;
	}
	a->commit = strcmp(argv[1], "commit") == 0;
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		if ((rc = conn_opt(&a->conn, ch, optarg)) != 0) {
			if (rc < 0)
				return EXIT_USAGE;
			continue;
		}
		switch (ch) {
		case 'f': a->fmc = optarg; break;
		case 'r': a->root = optarg; break;
		case 'x': a->restart_cmd = optarg; break;
		case 'N': a->dry_run = 1; break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		default:
			if (global_opt(ch, optarg) <= 0) {
				help(stderr);
				return EXIT_USAGE;
			}
		}
	}
	if (optind != argc || !a->fmc || !a->root || !a->conn.ca_id || !a->conn.devices) {
		log_error("fmc: --fmc ADDR, --root DIR, --ca ID and --devices devices.csv are required");
		return EXIT_USAGE;
	}
	if (a->dry_run && conn_args_dry_run(&a->conn, "fmc") != 0)
		return EXIT_USAGE;
	return conn_args_finish(&a->conn) != 0 ? EXIT_USAGE : -1;
}

/* Connect to the FMC and make sure it is the CA's. 0, or an exit code. */
static int open_fmc(const struct fmc_args *a, const struct device_list *dl, struct devconn **c)
{
	const struct device *d = NULL;
	struct sftca_msg m = { { 0 } };
	struct identity id;
	enum device_shell shell;

	for (size_t i = 0; i < dl->n && d == NULL; i++)
		if (strcmp(dl->v[i].ip, a->fmc) == 0 || strcmp(dl->v[i].name, a->fmc) == 0)
			d = &dl->v[i];
	if (d == NULL) {
		log_error("fmc: %s has no row in %s (its login: device_name or ip %s)", a->fmc,
			  a->conn.devices, a->fmc);
		return EXIT_FAIL;
	}
	shell = d->shell != SHELL_DEFAULT ? d->shell : a->conn.shell;
	if (devconn_open(d, shell, &a->conn.conn, c, &m) != 0) {
		log_error("fmc %s: %s", a->fmc, m.text);
		return EXIT_FAIL;
	}
	if (identify_fmc_read(*c, shell, a->conn.identity_file, &id, &m) != 0) {
		log_error("fmc %s: %s", a->fmc, m.text);
		return EXIT_FAIL;
	}
	if (id.uuid[0] == '\0') {
		log_error("fmc %s: refused, nothing done: who it is cannot be read (%s)", a->fmc,
			  id.why.text);
		return EXIT_FAIL;
	}
	if (strcmp(id.uuid, a->conn.ca_id) != 0) {
		log_error("fmc %s: refused, nothing done: it says it is %s, not the FMC of --ca %s",
			  a->fmc, id.uuid, a->conn.ca_id);
		return EXIT_FAIL;
	}
	if (id.kind == DEVICE_KIND_FTD) {
		log_error("fmc %s: refused, nothing done: its model \"%s\" is not a Management Center",
			  a->fmc, id.model);
		return EXIT_FAIL;
	}
	return 0;
}

/* The set's files on the FMC: path, sha256, mode and owner. 0 or -1. */
static int remote_list(struct devconn *c, const char *who, struct flist *l)
{
	struct sftca_msg m = { { 0 } };
	char cmd[2048], *out, *line, *save = NULL;
	size_t used = 0;
	int status, r = -1;

	used += (size_t)snprintf(cmd, sizeof(cmd), "for f in");
	for (size_t i = 0; i < NSET; i++)
		used += (size_t)snprintf(cmd + used, sizeof(cmd) - used, " %s", fileset[i]);
	snprintf(cmd + used, sizeof(cmd) - used, "%s%s%s",
		 "; do [ -f \"$f\" ] && [ ! -L \"$f\" ] || continue; sha256sum \"$f\" && stat -c '",
		 SHELL_STAT_FORMAT, "' \"$f\"; done; echo " LIST_END);
	if ((out = malloc(SHELLBUF_MAX)) == NULL)
		return -1;
	if (devconn_run(c, cmd, out, SHELLBUF_MAX, &status, &m) != 0) {
		log_error("fmc %s: listing its files: %s", who, m.text);
		goto out;
	}
	if (status != 0 || strstr(out, LIST_END) == NULL) {
		log_error("fmc %s: listing its files failed (status %d)", who, status);
		goto out;
	}
	for (line = strtok_r(out, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		char path[600], sha[65];
		unsigned mode;
		unsigned long uid, gid;
		struct fent *e;

		if (sscanf(line, "%64[0-9a-f]  %599[^\r\n]", sha, path) == 2 && strlen(sha) == 64) {
			if (!path_ok(path) || strlen(path) >= sizeof(e->path)) {
				char esc[700];
				text_escape(path, esc, sizeof(esc));
				log_error("fmc %s: listed %s, which is not one of its sftunnel files (or has an "
					  "unusual name): refused, nothing fetched",
					  who, esc);
				goto out;
			}
			if ((e = flist_add(l, path)) == NULL)
				goto out;
			memcpy(e->sha, sha, sizeof(e->sha));
		} else if (sscanf(line, SHELL_STAT_TAG " %o %lu %lu %599[^\r\n]", &mode, &uid, &gid, path) == 4 &&
			   (e = flist_find(l, path)) != NULL) {
			e->st = (struct shell_stat){ .present = 1, .mode = mode & 07777, .uid = uid, .gid = gid };
		}
	}
	for (size_t i = 0; i < l->n; i++)
		if (!l->v[i].st.present) {
			log_error("fmc %s: no mode and owner listed for %s", who, l->v[i].path);
			goto out;
		}
	r = 0;
out:
	free(out);
	return r;
}

/* The bytes of one FMC file (base64 over the shell), checked against sha. */
static int fetch(struct devconn *c, const char *who, const struct fent *e, char **data, size_t *len)
{
	struct sftca_msg m = { { 0 } };
	char cmd[700], qpath[600], *out, *b64;
	size_t n = 0, cap = (MAX_FILE / 3 + 1) * 4 + 4096;
	unsigned char *bin;
	char sha[65];
	int status, dl;

	if (sh_quote(e->path, qpath, sizeof(qpath)) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "base64 -w0 < %s", qpath);
	if ((out = malloc(cap)) == NULL)
		return -1;
	if (devconn_run(c, cmd, out, cap, &status, &m) != 0 || status != 0) {
		log_error("fmc %s: %s could not be read: %s", who, e->path, m.text[0] ? m.text : "status");
		free(out);
		return -1;
	}
	b64 = out;
	for (char *p = out; *p; p++)
		if (*p != '\r' && *p != '\n' && *p != ' ')
			b64[n++] = *p;
	b64[n] = '\0';
	if ((bin = malloc(n / 4 * 3 + 3)) == NULL || n % 4 != 0 ||
	    (dl = EVP_DecodeBlock(bin, (unsigned char *)b64, (int)n)) < 0) {
		log_error("fmc %s: %s came back garbled", who, e->path);
		free(bin);
		free(out);
		return -1;
	}
	if (n >= 1 && b64[n - 1] == '=')
		dl--;
	if (n >= 2 && b64[n - 2] == '=')
		dl--;
	free(out);
	sha256_hex(bin, (size_t)dl, sha);
	if (strcmp(sha, e->sha) != 0) {
		log_error("fmc %s: %s changed while it was pulled (run fmc pull again)", who, e->path);
		OPENSSL_cleanse(bin, (size_t)dl);
		free(bin);
		return -1;
	}
	*data = (char *)bin;
	*len = (size_t)dl;
	return 0;
}

/* mkdir -p of the directory of DIR/path (0755: the layout is public; the
 * keys inside are 0600). */
static int local_dir(const char *root, const char *path, char *dir, size_t len)
{
	char *slash;

	if ((size_t)snprintf(dir, len, "%s%s", root, path) >= len || (slash = strrchr(dir, '/')) == NULL)
		return -1;
	*slash = '\0';
	for (char *p = dir + strlen(root) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int is_key(const char *path)
{
	return strstr(base(path), "key") != NULL;
}

/* DIR/.sftca-fmc-pull.json from l (0600, atomically). */
static int manifest_write(const struct fmc_args *a, const struct flist *l, const char *backup,
			  int restart_pending)
{
	json_t *j = json_object(), *files = json_array();
	char now[32], *text;
	time_t t = time(NULL);
	struct tm tm;
	int r;

	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(files, json_pack("{s:s, s:s, s:I, s:I, s:I}", "path", l->v[i].path,
						       "sha256", l->v[i].sha, "mode", (json_int_t)l->v[i].st.mode,
						       "uid", (json_int_t)l->v[i].st.uid, "gid",
						       (json_int_t)l->v[i].st.gid));
	json_object_set_new(j, "fmc", json_string(a->fmc));
	json_object_set_new(j, "ca", json_string(a->conn.ca_id));
	json_object_set_new(j, "time", json_string(now));
	json_object_set_new(j, "backup", json_string(backup));
	if (restart_pending)
		json_object_set_new(j, "restart_pending", json_true());
	json_object_set_new(j, "files", files);
	text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	if (text == NULL)
		return -1;
	r = af_write(a->root, &(struct af_file){ MANIFEST, text, strlen(text), 0600 }, NULL);
	free(text);
	if (r != 0)
		log_error("fmc: %s/" MANIFEST " could not be written", a->root);
	return r;
}

static int pull(const struct fmc_args *a, struct devconn *c, const struct flist *l)
{
	struct sftca_msg m = { { 0 } };
	char stamp[32], backup[128], cmd[2048], out[1024], dir[4200];
	size_t used;
	int status;

	af_backup_stamp(stamp);
	snprintf(backup, sizeof(backup), "/var/tmp/sftca-fmc-backup.%s.tar.gz", stamp);
	if (a->dry_run) {
		printf("fmc %s: would back up /etc/sf/ca_root, /etc/sf/keys and the peers' pairs into %s\n",
		       a->fmc, backup);
		for (size_t i = 0; i < l->n; i++)
			printf("fmc %s: would fetch %s (mode %o, owner %lu:%lu)\n", a->fmc, l->v[i].path,
			       l->v[i].st.mode, l->v[i].st.uid, l->v[i].st.gid);
		printf("fmc %s: dry run: %zu files, nothing written\n", a->fmc, l->n);
		return EXIT_OK;
	}
	/* The backup first: nothing is fetched from an FMC that was not saved. */
	used = (size_t)snprintf(cmd, sizeof(cmd),
				"cd / || exit 3; umask 077; B=%s; [ -e \"$B\" ] && exit 6; set --; "
				"for f in etc/sf/ca_root etc/sf/keys",
				backup);
	for (size_t i = 4; i < NSET; i++)
		used += (size_t)snprintf(cmd + used, sizeof(cmd) - used, " %s", fileset[i] + 1);
	snprintf(cmd + used, sizeof(cmd) - used,
		 "; do [ -e \"$f\" ] && set -- \"$@\" \"$f\"; done; tar czf \"$B\" \"$@\" 2>&1 && "
		 "chmod 0600 \"$B\" && stat -c 'mode %%a' \"$B\"");
	if (devconn_run(c, cmd, out, sizeof(out), &status, &m) != 0 || status != 0 ||
	    strstr(out, "mode 600") == NULL) {
		char esc[600];
		text_escape(m.text[0] ? m.text : out, esc, sizeof(esc));
		log_error("fmc %s: the backup %s could not be made (status %d): %s; nothing fetched",
			  a->fmc, backup, status, esc);
		return EXIT_FAIL;
	}
	printf("fmc %s: backup %s (mode 0600)\n", a->fmc, backup);
	for (size_t i = 0; i < l->n; i++) {
		const struct fent *e = &l->v[i];
		char *data = NULL;
		size_t len = 0;
		int r;

		if (fetch(c, a->fmc, e, &data, &len) != 0)
			return EXIT_FAIL;
		if (local_dir(a->root, e->path, dir, sizeof(dir)) != 0) {
			log_error("fmc: %s%s: its directory cannot be made: %s", a->root, e->path, strerror(errno));
			free(data);
			return EXIT_FAIL;
		}
		r = af_write_nofollow(dir, &(struct af_file){ base(e->path), data, len,
							      is_key(e->path) ? 0600 : 0644 }, stamp);
		OPENSSL_cleanse(data, len);
		free(data);
		if (r != 0) {
			log_error("fmc: %s%s cannot be written", a->root, e->path);
			return EXIT_FAIL;
		}
		printf("fmc %s: fetched %s\n", a->fmc, e->path);
	}
	if (manifest_write(a, l, backup, 0) != 0)
		return EXIT_FAIL;
	printf("fmc %s: %zu files in %s, manifest %s/" MANIFEST "\n", a->fmc, l->n, a->root, a->root);
	return EXIT_OK;
}

/* The manifest into l; its backup path and restart_pending. 0 or -1. */
static int manifest_read(const struct fmc_args *a, struct flist *l, char *backup, size_t blen,
			 int *pending)
{
	char path[4200];
	json_error_t err;
	json_t *j, *files, *f;
	const char *ca = NULL, *bk = NULL;
	size_t i;
	int r = -1;

	snprintf(path, sizeof(path), "%s/" MANIFEST, a->root);
	if ((j = json_load_file(path, 0, &err)) == NULL) {
		log_error("fmc commit: %s: %s (run sftca fmc pull first)", path, err.text);
		return -1;
	}
	if (json_unpack(j, "{s:s, s?s, s:o}", "ca", &ca, "backup", &bk, "files", &files) != 0 ||
	    !json_is_array(files)) {
		log_error("fmc commit: %s is not a manifest fmc pull wrote", path);
		goto out;
	}
	if (strcmp(ca, a->conn.ca_id) != 0) {
		log_error("fmc commit: %s was pulled for CA %s, not --ca %s", path, ca, a->conn.ca_id);
		goto out;
	}
	snprintf(backup, blen, "%s", bk ? bk : "");
	*pending = json_is_true(json_object_get(j, "restart_pending"));
	json_array_foreach(files, i, f) {
		const char *p, *sha;
		json_int_t mode, uid, gid;
		struct fent *e;

		if (json_unpack(f, "{s:s, s:s, s:I, s:I, s:I}", "path", &p, "sha256", &sha, "mode", &mode,
				"uid", &uid, "gid", &gid) != 0 ||
		    !path_ok(p) || p[0] != '/' || strlen(sha) != 64 || (e = flist_add(l, p)) == NULL) {
			log_error("fmc commit: %s: file entry %zu is malformed", path, i);
			goto out;
		}
		snprintf(e->sha, sizeof(e->sha), "%s", sha);
		e->st = (struct shell_stat){ .present = 1, .mode = (unsigned)mode & 07777,
					     .uid = (unsigned long)uid, .gid = (unsigned long)gid };
	}
	r = 0;
out:
	json_decref(j);
	return r;
}

/* The set's files in the local tree, by their FMC path. */
static int local_list(const char *root, struct flist *l)
{
	char pat[4300];

	for (size_t i = 0; i < NSET; i++) {
		glob_t g;
		snprintf(pat, sizeof(pat), "%s%s", root, fileset[i]);
		if (glob(pat, 0, NULL, &g) != 0)
			continue;
		for (size_t k = 0; k < g.gl_pathc; k++) {
			struct stat st;
			const char *p = g.gl_pathv[k] + strlen(root);
			if (lstat(g.gl_pathv[k], &st) != 0 || !S_ISREG(st.st_mode) || !path_ok(p))
				continue;
			if (flist_add(l, p) == NULL) {
				globfree(&g);
				return -1;
			}
		}
		globfree(&g);
	}
	return 0;
}

/* The pairs among the files to write are judged as push judges a device's
 * (peerfiles.c: key and certificate match, CN, chain to the tree's bundle,
 * not expired or revoked): what sftca verify calls bad never reaches the
 * FMC. 0, or -1 after naming each bad pair. */
static int pairs_ok(const struct fmc_args *a, const struct flist *put)
{
	struct peerfiles_policy pol = { .chain = 1, .renew_days = -1, .now = time(NULL) };
	struct sftca_msg m = { { 0 } };
	struct trust *trust;
	int bad = 0;

	if ((trust = trust_load(a->root, &m)) == NULL) {
		log_error("fmc commit: %s: nothing written", m.text);
		return -1;
	}
	pol.trust = trust;
	for (size_t i = 0; i < put->n; i++) {
		const char *p = put->v[i].path, *b = base(p), *u;
		struct layout_target t = { .self = 0 };
		struct peerfiles_result res;
		size_t dl = strlen(p) - strlen(b) - 1, k;

		if (strncmp(b, "sftunnel-", 9) != 0)
			continue;
		/* Once per directory: the first of its files to be written. */
		for (k = 0; k < i; k++)
			if (strncmp(put->v[k].path, p, dl + 1) == 0 && strchr(put->v[k].path + dl + 1, '/') == NULL &&
			    strncmp(base(put->v[k].path), "sftunnel-", 9) == 0)
				break;
		if (k < i)
			continue;
		if (strncmp(p, "/etc/sf/keys/", 13) == 0) {
			t.self = 1;
			snprintf(t.uuid, sizeof(t.uuid), "%s", a->conn.ca_id);
		} else {
			u = p + strlen(FMC_PEERS "/");
			snprintf(t.uuid, sizeof(t.uuid), "%.*s", (int)strcspn(u, "/"), u);
		}
		snprintf(t.dir, sizeof(t.dir), "%s%.*s", a->root, (int)dl, p);
		memset(&res, 0, sizeof(res));
		if (peerfiles_check(&pol, &t, &res) != PF_OK) {
			log_error("fmc commit: the pair in %s is not written: %s (sftca verify --root %s says "
				  "the same; run sftca issue)", t.dir, res.why.text, a->root);
			bad++;
		}
	}
	trust_free(trust);
	if (bad)
		log_error("fmc commit: %d bad pair(s): nothing written, no restart", bad);
	return bad ? -1 : 0;
}

/* Commit: which files differ on the FMC from the manifest (refuse), which
 * differ locally (write), then write, restart and remember. */
static int commit(const struct fmc_args *a, struct devconn *c, const struct flist *now)
{
	struct flist man = { 0 }, loc = { 0 }, put = { 0 }, after = { 0 };
	struct sftca_msg m = { { 0 } };
	char backup[4200], stamp[32], path[4300];
	struct rfile *rf = NULL;
	int pending = 0, bad = 0, rc = EXIT_FAIL, status;

	if (manifest_read(a, &man, backup, sizeof(backup), &pending) != 0)
		goto out;
	/* Changed underneath since the pull: refuse, naming every file. */
	for (size_t i = 0; i < man.n; i++) {
		const struct fent *e = flist_find(now, man.v[i].path);
		if (e == NULL)
			log_error("fmc %s: %s was removed on the FMC since the pull", a->fmc, man.v[i].path), bad++;
		else if (strcmp(e->sha, man.v[i].sha) != 0)
			log_error("fmc %s: %s changed on the FMC since the pull", a->fmc, man.v[i].path), bad++;
	}
	for (size_t i = 0; i < now->n; i++)
		if (flist_find(&man, now->v[i].path) == NULL)
			log_error("fmc %s: %s was added on the FMC since the pull", a->fmc, now->v[i].path), bad++;
	if (bad) {
		log_error("fmc %s: commit refused: %d file(s) changed on the FMC since the pull (someone ran "
			  "generate_certs.pl?): nothing written, no restart (pull again and redo the renewal)",
			  a->fmc, bad);
		goto out;
	}
	/* What the local tree changed: a file of the manifest with another hash,
	 * or a file the FMC does not have. */
	if (local_list(a->root, &loc) != 0)
		goto out;
	for (size_t i = 0; i < man.n; i++)
		if (flist_find(&loc, man.v[i].path) == NULL) {
			log_error("fmc commit: %s%s is missing locally: nothing written (a removal is not "
				  "committed; pull again)", a->root, man.v[i].path);
			goto out;
		}
	for (size_t i = 0; i < loc.n; i++) {
		struct fent *e = &loc.v[i], *was = flist_find(&man, e->path), *w;
		snprintf(path, sizeof(path), "%s%s", a->root, e->path);
		if (file_read_all(path, MAX_FILE, &e->data, &e->len) != 0) {
			log_error("fmc commit: %s cannot be read: nothing written", path);
			goto out;
		}
		sha256_hex(e->data, e->len, e->sha);
		if (was && strcmp(was->sha, e->sha) == 0)
			continue;
		if ((w = flist_add(&put, e->path)) == NULL)
			goto out;
		memcpy(w->sha, e->sha, sizeof(w->sha));
		w->data = e->data;
		w->len = e->len;
		e->data = NULL;
		if (was)
			w->st = was->st;
		else {
			/* A new file: its sibling's mode and owner on the FMC. */
			size_t dl = strlen(e->path) - strlen(base(e->path));
			w->st = (struct shell_stat){ .mode = is_key(e->path) ? 0600 : 0644 };
			for (size_t k = 0; k < man.n; k++)
				if (strncmp(man.v[k].path, e->path, dl) == 0 && strchr(man.v[k].path + dl, '/') == NULL) {
					w->st = man.v[k].st;
					break;
				}
		}
	}
	if (put.n == 0 && !pending) {
		printf("fmc %s: nothing to commit (the local files are the FMC's)\n", a->fmc);
		rc = EXIT_OK;
		goto out;
	}
	if (pairs_ok(a, &put) != 0)
		goto out;
	for (size_t i = 0; i < put.n; i++)
		printf("fmc %s: %s %s (mode %o, owner %lu:%lu)\n", a->fmc, a->dry_run ? "would write" : "writing",
		       put.v[i].path, put.v[i].st.mode, put.v[i].st.uid, put.v[i].st.gid);
	if (a->dry_run) {
		printf("fmc %s: dry run: %zu file(s) would be written, then '%s'; nothing written, "
		       "no restart\n", a->fmc, put.n, a->restart_cmd);
		rc = EXIT_OK;
		goto out;
	}
	af_backup_stamp(stamp);
	if (put.n) {
		if ((rf = calloc(put.n, sizeof(*rf))) == NULL)
			goto out;
		for (size_t i = 0; i < put.n; i++) {
			rf[i] = (struct rfile){ .path = put.v[i].path, .data = put.v[i].data,
						.len = put.v[i].len, .want = put.v[i].st };
			memcpy(rf[i].sha, put.v[i].sha, sizeof(rf[i].sha));
		}
		if (rfile_upload(c, rf, put.n, &m) != 0 || rfile_check(c, rf, put.n, &m) != 0 ||
		    rfile_replace(c, rf, put.n, stamp, "", &m) != 0) {
			char esc[sizeof(m.text)];
			text_escape(m.text, esc, sizeof(esc));
			log_error("fmc %s: %s", a->fmc, esc);
			rfile_cleanup(c, rf, put.n);
			goto out;
		}
	}
	/* What is on the FMC now is the manifest: the written files checked. */
	if (remote_list(c, a->fmc, &after) != 0)
		goto out;
	for (size_t i = 0; i < put.n; i++) {
		const struct fent *e = flist_find(&after, put.v[i].path);
		if (e == NULL || strcmp(e->sha, put.v[i].sha) != 0 || e->st.mode != put.v[i].st.mode ||
		    (put.v[i].st.present && (e->st.uid != put.v[i].st.uid || e->st.gid != put.v[i].st.gid))) {
			log_error("fmc %s: %s does not hold what was sent, with its mode and owner, after the "
				  "rename", a->fmc, put.v[i].path);
			goto out;
		}
	}
	if (manifest_write(a, &after, backup, 1) != 0)
		goto out;
	{
		char out[1024], esc[1100];
		if (devconn_run(c, a->restart_cmd, out, sizeof(out), &status, &m) != 0 || status != 0) {
			text_escape(m.text[0] ? m.text : out, esc, sizeof(esc));
			log_error("fmc %s: files in place; '%s' failed (status %d): %s (fmc commit again "
				  "restarts it)", a->fmc, a->restart_cmd, status, esc);
			goto out;
		}
	}
	if (manifest_write(a, &after, backup, 0) != 0)
		goto out;
	printf("fmc %s: done: %zu file(s) written (old ones kept as NAME.backup.%s), sftunnel "
	       "restarted; now sftca push the devices\n", a->fmc, put.n, stamp);
	rc = EXIT_OK;
out:
	free(rf);
	flist_free(&man);
	flist_free(&loc);
	flist_free(&put);
	flist_free(&after);
	return rc;
}

int cmd_fmc(int argc, char **argv)
{
	struct fmc_args a;
	struct device_list dl = { 0 };
	struct flist now = { 0 };
	struct devconn *c = NULL;
	struct treelock *lock = NULL;
	struct sftca_msg m = { { 0 } };
	int rc;

	if ((rc = parse(argc, argv, &a)) >= 0)
		return rc;
	rc = EXIT_FAIL;
	if (devices_load(a.conn.devices, &dl) != 0)
		goto out;
	/* Nothing local is written before the FMC proved who it is. */
	if ((rc = open_fmc(&a, &dl, &c)) != 0)
		goto out;
	rc = EXIT_FAIL;
	if (remote_list(c, a.fmc, &now) != 0)
		goto out;
	/* A pull makes the tree's frame first, so that it can be locked. */
	if (!a.dry_run && !a.commit) {
		static const char *const frame[] = { "", "/etc", "/etc/sf", "/etc/sf/ca_root", "/var",
						     "/var/sf", "/var/sf/peers" };
		char dir[4200];
		for (size_t i = 0; i < sizeof(frame) / sizeof(frame[0]); i++)
			if ((size_t)snprintf(dir, sizeof(dir), "%s%s", a.root, frame[i]) >= sizeof(dir) ||
			    (mkdir(dir, 0755) != 0 && errno != EEXIST)) {
				log_error("fmc: %s cannot be made: %s", dir, strerror(errno));
				goto out;
			}
	}
	/* Nothing else writes the tree meanwhile (a dry run takes no lock). */
	if (!a.dry_run && (lock = treelock_take(a.root, a.commit ? "fmc commit" : "fmc pull", &m)) == NULL) {
		log_error("%s", m.text);
		goto out;
	}
	rc = a.commit ? commit(&a, c, &now) : pull(&a, c, &now);
out:
	devconn_close(c);
	treelock_release(lock);
	flist_free(&now);
	devices_free(&dl);
	return rc;
}
