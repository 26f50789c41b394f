/* sftca-signer: holds the InternalCA keys in a PKCS#11 token and issues
 * sftunnel certificates over gRPC. */
#include "anchor.h"
#include "audit.h"
#include "ca.h"
#include "config.h"
#include "errors.h"
#include "expiry.h"
#include "fileio.h"
#include "handlers.h"
#include "ledger.h"
#include "log.h"
#include "ratelimit.h"
#include "server.h"
#include "signer.h"
#include "signpool.h"
#include "tlsfiles.h"
#include "token.h"
#include "x509util.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <grpc/grpc.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXPIRY_CHECK_SECONDS (6 * 3600)

/* A mode of sftca-signer besides serving: cfg is NULL when !needs_config. */
struct command {
	const char *name;
	int (*fn)(const struct signer_config *cfg, int argc, char **argv);
	int needs_config;
	const char *args;    /* the synopsis after the name */
	const char *summary; /* one line for --help */
};

static void command_usage(FILE *f, const char *name);

/* The state directory: created 0700, and never readable by others. */
/* Who owns the state: [signer] user when root drops to it, else whoever
 * runs us. */
struct owner {
	uid_t uid;
	gid_t gid;
	const char *name;
};

static int state_owner(const struct signer_config *cfg, struct owner *o)
{
	struct passwd *pw;

	o->uid = geteuid();
	o->gid = getegid();
	o->name = NULL;
	if (o->uid != 0 || cfg->user == NULL)
		return 0;
	if ((pw = getpwnam(cfg->user)) == NULL) {
		log_error("[signer] user = %s: no such user", cfg->user);
		return SFTCA_ERR_CONFIG;
	}
	o->uid = pw->pw_uid;
	o->gid = pw->pw_gid;
	o->name = cfg->user;
	return 0;
}

/* Every file in the state directory must belong to the user the signer
 * runs as: one left behind by a root run would fail later, mid-way, as a
 * ledger or audit write error. */
static int check_state_files(int dfd, const char *dir, const struct owner *o)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	struct stat st;
	int r = 0;

	if (d == NULL) {
		log_error("state_dir %s cannot be read: %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return SFTCA_ERR_CONFIG;
	}
	while (r == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
			continue;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_uid == o->uid)
			continue;
		log_error("%s/%s belongs to uid %u, but the signer runs as %s (uid %u): "
			  "chown -R %u:%u %s",
			  dir, e->d_name, (unsigned)st.st_uid, o->name ? o->name : "this user",
			  (unsigned)o->uid, (unsigned)o->uid, (unsigned)o->gid, dir);
		r = SFTCA_ERR_CONFIG;
	}
	closedir(d);
	return r;
}

/* The state directory belongs to the user we drop to, who may put anything
 * in it, even before we start: every change root makes there goes through a
 * descriptor, never through a name that could be a symlink by now. (The
 * path to the directory itself is the administrator's.) */
static int open_state_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		log_error("state_dir %s cannot be opened: %s", dir, strerror(errno));
	return dfd;
}

static int prepare_state_dir(const char *dir, const struct owner *o)
{
	struct stat st;
	int dfd, made, r = SFTCA_ERR_CONFIG;

	if (!(made = mkdir(dir, 0700) == 0) && errno != EEXIST) {
		log_error("state_dir %s cannot be created: %s", dir, strerror(errno));
		return SFTCA_ERR_CONFIG;
	}
	if ((dfd = open_state_dir(dir)) < 0)
		return SFTCA_ERR_CONFIG;
	if (fstat(dfd, &st) != 0 || !S_ISDIR(st.st_mode)) {
		log_error("state_dir %s is not a directory", dir);
		goto out;
	}
	/* Only the directory we just made (root's, empty) is given away. */
	if (made && st.st_uid == geteuid() && o->uid != geteuid()) {
		if (fchown(dfd, o->uid, o->gid) != 0) {
			log_error("state_dir %s cannot be given to %s: %s", dir, o->name,
				  strerror(errno));
			goto out;
		}
		st.st_uid = o->uid;
	}
	if (st.st_uid != o->uid) {
		log_error("state_dir %s belongs to uid %u, but the signer runs as %s (uid %u): "
			  "chown -R %u:%u %s",
			  dir, (unsigned)st.st_uid, o->name ? o->name : "this user", (unsigned)o->uid,
			  (unsigned)o->uid, (unsigned)o->gid, dir);
		goto out;
	}
	if ((st.st_mode & 077) && fchmod(dfd, 0700) != 0) {
		log_error("state_dir %s has mode %04o and cannot be made 0700", dir,
			  (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (access(dir, W_OK | X_OK) != 0) {
		log_error("state_dir %s is not writable: %s", dir, strerror(errno));
		goto out;
	}
	r = check_state_files(dfd, dir, o);
out:
	close(dfd);
	return r;
}

/* One signer (or maintenance command) per state directory at a time. The
 * lock is opened as root inside a directory its user owns: a symlink or a
 * hard link planted there must not make root open, let alone chown, a file
 * elsewhere (O_NOFOLLOW, a regular file with one link, owned by us or it). */
static int lock_state_dir(const char *dir, const char *who, const struct owner *o)
{
	struct stat st;
	int dfd, fd = -1;

	if ((dfd = open_state_dir(dir)) < 0)
		return -1;
	fd = openat(dfd, "signer.lock",
		    O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);
	close(dfd);
	if (fd < 0) {
		if (errno == ELOOP)
			log_error("%s: %s/signer.lock is a symbolic link: refusing to follow it; "
				  "remove it (rm %s/signer.lock)",
				  who, dir, dir);
		else
			log_error("%s: %s/signer.lock: %s", who, dir, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    (st.st_uid != o->uid && st.st_uid != geteuid())) {
		log_error("%s: %s/signer.lock is not a regular file with one link owned by %s "
			  "(uid %u): refusing to use it; remove it",
			  who, dir, o->name ? o->name : "this user", (unsigned)o->uid);
		goto fail;
	}
	if (st.st_uid != o->uid && fchown(fd, o->uid, o->gid) != 0) {
		log_error("%s/signer.lock: cannot be given to %s: %s", dir, o->name,
			  strerror(errno));
		goto fail;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		log_error("%s: the state directory %s is in use by a running signer; stop it first",
			  who, dir);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* Validate what --check-config can without logging in to the token. */
static int check_config_files(const struct signer_config *cfg)
{
	struct tls_files tf;
	struct owner own;
	char *pin = NULL;
	size_t pinlen = 0;
	void *dl;
	int bad = 0, tcp = 0;

	for (size_t i = 0; i < cfg->nlisten; i++)
		if (strncmp(cfg->listen[i], "unix:", 5) != 0)
			tcp = 1;
	if (tcp) {
		if (tls_files_load(cfg->tls_cert, cfg->tls_key, cfg->client_ca, &tf) != 0)
			bad = 1;
		else
			tls_files_clear(&tf);
	}
	if (secret_read_file(cfg->pin_file, &pin, &pinlen) != 0)
		bad = 1;
	secret_free(pin, pinlen);
	if ((dl = dlopen(cfg->module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		log_error("PKCS#11 module %s cannot be loaded: %s", cfg->module, dlerror());
		bad = 1;
	} else {
		dlclose(dl);
	}
	if (state_owner(cfg, &own) != 0 || prepare_state_dir(cfg->state_dir, &own) != 0)
		bad = 1;
	return bad ? SFTCA_ERR_CONFIG : 0;
}

static int visit_expiry(void *arg, const char *ca_id, const char *subject,
			const struct ledger_gen *const *gens, size_t n, unsigned active,
			enum ca_custody custody)
{
	int64_t now = time(NULL);

	(void)arg, (void)subject, (void)custody;
	for (size_t i = 0; i < n; i++) {
		int expired;
		int64_t days;
		if (gens[i]->generation != active)
			continue;
		days = expiry_days(gens[i]->not_after, now, &expired);
		switch (expiry_classify(gens[i]->not_after, now, 90, 30)) {
		case EXPIRY_CRITICAL:
			if (expired)
				log_error("CRITICAL: CA %s expired %lld days ago: renew it now (sftca ca "
					  "renew --ca %s)",
					  ca_id, (long long)-days, ca_id);
			else
				log_error("CRITICAL: CA %s expires in %lld days: renew it now (sftca ca "
					  "renew --ca %s)",
					  ca_id, (long long)days, ca_id);
			break;
		case EXPIRY_WARNING:
			log_warn("CA %s expires in %lld days: plan its renewal", ca_id,
				 (long long)days);
			break;
		default:
			break;
		}
	}
	return 0;
}

static void check_expiry(struct signer *s)
{
	if (ca_foreach(s->cas, NULL, visit_expiry, NULL) != 0)
		log_warn("could not check CA expiry");
}

/* Drop to the state owner (after the listeners are bound), with the
 * user's own groups: a token directory is often group-readable only. */
static int drop_privileges(const struct owner *o)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };

	if (o->name == NULL)
		return 0;
	/* mlockall(MCL_FUTURE) stays on across setuid(), but an unprivileged
	 * user's RLIMIT_MEMLOCK would then fail every later mapping (the token
	 * module's, thread stacks): lift the limit while still root. */
	if (setrlimit(RLIMIT_MEMLOCK, &unlimited) != 0) {
		log_warn("cannot lift RLIMIT_MEMLOCK (%s): running as %s with memory not locked "
			 "against swap; start the signer with an unlimited memlock limit (systemd: "
			 "LimitMEMLOCK=infinity)",
			 strerror(errno), o->name);
		munlockall();
	}
	if (initgroups(o->name, o->gid) != 0 || setgid(o->gid) != 0 || setuid(o->uid) != 0 ||
	    setuid(0) == 0) {
		log_error("cannot drop privileges to %s: %s", o->name, strerror(errno));
		return -1;
	}
	/* setuid() re-enables core dumps: hide our memory again. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	log_info("running as %s (uid %u)", o->name, (unsigned)o->uid);
	return 0;
}

/* Can a user other than root rename or replace entries in directory st? */
static int others_can_swap(const struct stat *st)
{
	return st->st_uid != 0 || ((st->st_mode & 022) && !(st->st_mode & S_ISVTX));
}

/* A unix socket bound as root goes to the user too, so that its group
 * decides who may connect. A socket cannot be opened, so there is no
 * descriptor to fchown: we check the name with fstatat (a socket, ours,
 * one link) and change it with fchownat(AT_SYMLINK_NOFOLLOW) in a directory
 * held open. If others may write that directory (the signer's own run
 * directory, typically), its writers can swap the name between the two
 * calls, but only for a symlink (NOFOLLOW then changes the link itself) or
 * a hard link to a file they do not own, which the kernel refuses them
 * while fs.protected_hardlinks = 1: without that we refuse to start. */
static int give_socket(const char *path, const struct owner *o)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	char dir[4096], prot = 0;
	struct stat dst, st, st2;
	int dfd, r = -1;
	FILE *f;

	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
		 slash ? path : ".");
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fstat(dfd, &dst) != 0) {
		log_error("%s: directory %s: %s", path, dir, strerror(errno));
		goto out;
	}
	if (others_can_swap(&dst)) {
		if ((f = fopen("/proc/sys/fs/protected_hardlinks", "re")) != NULL) {
			prot = (char)fgetc(f);
			fclose(f);
		}
		if (prot != '1') {
			log_error("%s: directory %s can be written by uid %u and "
				  "fs.protected_hardlinks is off: the socket cannot be given to %s "
				  "safely; set sysctl fs.protected_hardlinks=1 or use a directory "
				  "only root can write",
				  path, dir, (unsigned)dst.st_uid, o->name);
			goto out;
		}
	}
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISSOCK(st.st_mode) ||
	    st.st_uid != geteuid() || st.st_nlink != 1) {
		log_error("%s: not the socket just bound (replaced by another file?): refusing to "
			  "chown it",
			  path);
		goto out;
	}
	if (fchownat(dfd, base, o->uid, o->gid, AT_SYMLINK_NOFOLLOW) != 0) {
		log_error("%s: cannot be given to %s: %s", path, o->name, strerror(errno));
		goto out;
	}
	if (fstatat(dfd, base, &st2, AT_SYMLINK_NOFOLLOW) != 0 || st2.st_ino != st.st_ino ||
	    st2.st_dev != st.st_dev) {
		log_error("%s: replaced while being given to %s: refusing to run", path, o->name);
		goto out;
	}
	r = 0;
out:
	if (dfd >= 0)
		close(dfd);
	return r;
}

static int give_sockets(const struct signer_config *cfg, const struct owner *o)
{
	for (size_t i = 0; o->name && i < cfg->nlisten; i++)
		if (strncmp(cfg->listen[i], "unix:", 5) == 0 && give_socket(cfg->listen[i] + 5, o))
			return -1;
	return 0;
}

struct runtime {
	struct signer s;
	struct server *srv;
	int lockfd;
};

/* The ledger the configuration names: [ledger] url, else SQLite in state_dir. */
static struct ledger_opts ledger_opts_of(const struct signer_config *cfg)
{
	struct ledger_opts o = { cfg->state_dir, cfg->ledger_url, cfg->ledger_password_file,
				 cfg->ledger_lease };
	return o;
}

/* Open token, ledger, audit log and CAs in that order. */
static int open_core(const struct signer_config *cfg, struct signer *s, int recover)
{
	struct token_opts to = { cfg->module, cfg->token_label, cfg->pin_file, cfg->sessions,
				 recover };
	struct ledger_opts lo = ledger_opts_of(cfg);
	int abandoned = 0, r;

	s->cfg = cfg;
	if ((r = token_open(&to, &s->token)) != 0)
		return r;
	if ((r = ledger_open_opts(&lo, &s->ledger, &abandoned)) != 0)
		return r;
	if (abandoned > 0)
		log_warn("%d serials left pending by an interrupted run are now abandoned (never "
			 "reused)",
			 abandoned);
	if ((r = audit_open(cfg->state_dir, &s->audit)) != 0)
		return r;
	audit_set_limits(s->audit, cfg->audit_rotate_bytes, cfg->audit_coalesce_seconds);
	audit_set_instance(s->audit, ledger_instance(s->ledger));
	if ((r = anchor_open(s)) != 0)
		return r;
	if (abandoned > 0)
		audit_log(s->audit, "ledger.abandon", "signer", NULL, "ok",
			  json_pack("{s:i}", "abandoned", abandoned));
	return ca_registry_load(s->token, s->ledger, &s->cas);
}

static void close_core(struct signer *s)
{
	signpool_free(s->pool);
	ratelimit_free(s->issue_rl);
	ca_registry_free(s->cas);
	anchor_close(s); /* a last checkpoint, signer.stop included */
	audit_close(s->audit);
	ledger_close(s->ledger);
	token_close(s->token);
	memset(s, 0, sizeof(*s));
}

static int serve(const struct signer_config *cfg, int allow_root)
{
	struct runtime rt = { .lockfd = -1 };
	struct owner own;
	struct server_opts so = { cfg, signer_methods, signer_nmethods, &rt.s };
	sigset_t set;
	int sig, r = 1;

	if (geteuid() == 0 && !allow_root && cfg->user == NULL) {
		log_error("refusing to run as root: set [signer] user = NAME to drop privileges "
			  "after binding, or pass --allow-root");
		return 1;
	}
	/* Signals are taken synchronously by this thread only. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (state_owner(cfg, &own) != 0 || prepare_state_dir(cfg->state_dir, &own) != 0 ||
	    (rt.lockfd = lock_state_dir(cfg->state_dir, "sftca-signer", &own)) < 0)
		return 1;
	grpc_init();
	if (server_bind(&so, &rt.srv) != 0)
		goto out;
	if (give_sockets(cfg, &own) != 0 || drop_privileges(&own) != 0)
		goto out;
	if (open_core(cfg, &rt.s, 1) != 0)
		goto out;
	if ((rt.s.pool = signpool_new(cfg->sessions)) == NULL ||
	    (rt.s.issue_rl = ratelimit_new(cfg->issue_rate, cfg->issue_burst)) == NULL)
		goto out;
	if (server_run(rt.srv) != 0)
		goto out;
	audit_log(rt.s.audit, "signer.start", "signer", NULL, "ok",
		  json_pack("{s:s, s:i}", "version", SFTCA_VERSION, "sessions", cfg->sessions));
	log_info("sftca-signer %s serving (%d token sessions, %u workers, max %u calls)",
		 SFTCA_VERSION, cfg->sessions, cfg->workers, cfg->max_calls);
	check_expiry(&rt.s);
	for (;;) {
		struct timespec ts = { EXPIRY_CHECK_SECONDS, 0 };
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig < 0) {
			if (errno == EAGAIN)
				check_expiry(&rt.s);
			continue;
		}
		if (sig == SIGHUP) {
			log_info("SIGHUP: rereading client_crl; the rest of the configuration is read "
				 "at start only");
			(void)server_reload_client_crl(rt.srv);
			continue;
		}
		break;
	}
	log_info("signal %d: stopping (calls in flight finish first)", sig);
	r = 0;
out:
	server_stop(rt.srv, 10000);
	if (rt.s.audit)
		audit_log(rt.s.audit, "signer.stop", "signer", NULL, "ok", NULL);
	close_core(&rt.s);
	grpc_shutdown_blocking();
	if (rt.lockfd >= 0)
		close(rt.lockfd);
	if (r == 0)
		log_info("stopped");
	return r;
}

static int import_ca(const struct signer_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca", required_argument, NULL, 'c' },
		{ "cert", required_argument, NULL, 'C' },
		{ "key", required_argument, NULL, 'K' },
		{ "custody", required_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ca = NULL, *certp = NULL, *keyp = NULL;
	/* The FMC signs device registrations with its own copy of the key: unless
	 * the operator says that copy is destroyed, it is still in use. */
	enum ca_custody custody = CUSTODY_SHARED;
	struct signer s = { 0 };
	struct owner own;
	struct ca_change res;
	struct token_call call = { 0 }; /* no gRPC caller: the default wait per token call */
	char requester[160], *keytext = NULL;
	size_t keylen = 0;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int c, lockfd = -1, r = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': ca = optarg; break;
		case 'C': certp = optarg; break;
		case 'K': keyp = optarg; break;
		case 'U':
			if ((custody = custody_parse(optarg)) == CUSTODY_NONE) {
				fprintf(stderr, "sftca-signer import-ca: --custody '%s': shared or "
						"exclusive\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			command_usage(stdout, "import-ca");
			printf("\nMoves an existing InternalCA into the token as a non-extractable key "
			       "and records it as generation 1.\nThe key file must be mode 0600. Run it "
			       "with the signer stopped.\n\n"
			       "--custody shared (the default): the FMC keeps its copy of the key\n"
			       "  (/etc/sf/ca_root/cakey.pem) and goes on signing device registrations\n"
			       "  with it, so registering FTDs keeps working. Renew the CA (same key);\n"
			       "  'sftca ca rotate' is refused without --force.\n"
			       "--custody exclusive: the FMC's copy has been destroyed; the token holds\n"
			       "  the only one. New registrations are certified with 'sftca issue --peer'.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!ca || !certp || !keyp || optind != argc) {
		fprintf(stderr, "sftca-signer import-ca: --ca, --cert and --key are required\n");
		return 2;
	}
	/* The CA key is a secret like the PIN: refuse a file others can read. */
	if (secret_read_file(keyp, &keytext, &keylen) != 0)
		return 1;
	secret_free(keytext, keylen);
	if (pem_load_cert(certp, &cert) != 0 || pem_load_key(keyp, &key) != 0)
		goto out;
	if (state_owner(cfg, &own) != 0 || prepare_state_dir(cfg->state_dir, &own) != 0 ||
	    (lockfd = lock_state_dir(cfg->state_dir, "import-ca", &own)) < 0 ||
	    drop_privileges(&own) != 0)
		goto out;
	if (open_core(cfg, &s, 0) != 0)
		goto out;
	snprintf(requester, sizeof(requester), "local:uid=%u", (unsigned)getuid());
	r = ca_import(s.cas, ca, cert, key, custody, requester, &call, &res);
	audit_log(s.audit, "ca.import", requester, ca, r == 0 ? "ok" : "refused",
		  json_pack("{s:s, s:s, s:s}", "cert", certp, "custody", custody_name(custody),
			    "message", r ? res.message.text : ""));
	if (r != 0) {
		log_error("import of CA %s refused: %s", ca, msg_text(&res.message, r));
		r = 1;
		goto out;
	}
	printf("CA %s imported into token '%s' as generation 1 (key non-extractable), "
	       "custody %s.\n",
	       ca, cfg->token_label, custody_name(custody));
	if (custody == CUSTODY_SHARED)
		printf("The FMC keeps its copy of the key and signs device registrations with it:\n"
		       "leave /etc/sf/ca_root/cakey.pem on the FMC. Destroy this copy (%s)\n"
		       "if it is not the FMC's own file, e.g. shred -u %s\n",
		       keyp, keyp);
	else
		printf("The token must hold the only copy: destroy %s (shred -u %s) and the\n"
		       "FMC's /etc/sf/ca_root/cakey.pem with every backup of it. Certify each new\n"
		       "registration with 'sftca issue --peer UUID'.\n",
		       keyp, keyp);
	r = 0;
out:
	close_core(&s);
	X509_free(cert);
	EVP_PKEY_free(key);
	if (lockfd >= 0)
		close(lockfd);
	return r;
}

static int check_ledger(const struct signer_config *cfg, int argc, char **argv)
{
	struct ledger *l = NULL;
	struct ledger_opts lo;
	struct owner own;
	unsigned problems = 0;
	int abandoned = 0, lockfd, r;

	(void)argc, (void)argv; /* words after check-ledger have always been ignored */
	if (state_owner(cfg, &own) != 0 ||
	    (lockfd = lock_state_dir(cfg->state_dir, "check-ledger", &own)) < 0)
		return 1;
	if (drop_privileges(&own) != 0) {
		close(lockfd);
		return 1;
	}
	lo = ledger_opts_of(cfg);
	if ((r = ledger_open_opts(&lo, &l, &abandoned)) == 0) {
		r = ledger_check(l, &problems);
		printf("ledger %s: %s (%u problem%s; %d pending rows marked abandoned now)\n",
		       ledger_where(l), problems ? "DAMAGED" : "intact", problems,
		       problems == 1 ? "" : "s", abandoned);
	}
	ledger_close(l);
	close(lockfd);
	if (r != 0)
		return 1;
	return problems ? 1 : 0;
}

static int count_row(void *arg, const struct ledger_cert *row)
{
	(void)row;
	(*(size_t *)arg)++;
	return 0;
}

/* How many generations and certificates l holds. */
static int ledger_count_rows(struct ledger *l, size_t *ngens, size_t *ncerts)
{
	struct ledger_filter f = { .limit = 5000 };
	struct ledger_gen *gens;
	unsigned count;
	int r;

	if ((r = ledger_gens_load(l, NULL, &gens, ngens)) != 0)
		return r;
	ledger_gens_free(gens, *ngens);
	*ncerts = 0;
	do {
		if ((r = ledger_list(l, &f, count_row, ncerts, &f.after_rowid, &count)) != 0)
			return r;
	} while (count == f.limit);
	return 0;
}

/* Copy the SQLite ledger of state_dir into the PostgreSQL ledger of
 * [ledger] url, which must be empty: every generation, custody change,
 * certificate (DER and state) and CRL number, in one transaction, then
 * counted again on both sides. */
static int migrate_ledger(const struct signer_config *cfg, int argc, char **argv)
{
	struct ledger_opts lo = ledger_opts_of(cfg);
	struct ledger *from = NULL, *to = NULL;
	struct ledger_import im = { 0 };
	size_t ngens = 0, ncerts = 0;
	struct owner own;
	char path[4096];
	int abandoned = 0, lockfd, r = 1;

	(void)argv;
	if (argc > 1) {
		command_usage(stderr, "migrate-ledger");
		return 2;
	}
	if (cfg->ledger_url == NULL || cfg->ledger_url[0] == '\0') {
		log_error("%s: migrate-ledger copies into the PostgreSQL ledger of [ledger] url, "
			  "and there is none",
			  cfg->path);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/ledger.db", cfg->state_dir);
	if (access(path, F_OK) != 0) {
		log_error("migrate-ledger: %s: no SQLite ledger to copy (%s)", path, strerror(errno));
		return 1;
	}
	if (state_owner(cfg, &own) != 0 ||
	    (lockfd = lock_state_dir(cfg->state_dir, "migrate-ledger", &own)) < 0)
		return 1;
	if (drop_privileges(&own) != 0)
		goto out;
	if (ledger_open(cfg->state_dir, &from, &abandoned) != 0 || ledger_dump(from, &im) != 0)
		goto out;
	if (ledger_open_opts(&lo, &to, NULL) != 0 || ledger_import(to, &im) != 0)
		goto out;
	/* Read it back: the same number of everything, or say so. */
	if (ledger_count_rows(to, &ngens, &ncerts) != 0)
		goto out;
	if (ngens != im.ngens || ncerts != im.ncerts) {
		log_error("migrate-ledger: %s now holds %zu generations and %zu certificates; "
			  "%s held %zu and %zu",
			  ledger_where(to), ngens, ncerts, path, im.ngens, im.ncerts);
		goto out;
	}
	printf("ledger %s copied into %s: %zu CA generations, %zu custody changes, %zu "
	       "certificates, %zu CRL numbers (%d pending rows were abandoned first).\n"
	       "Set [ledger] url in every signer's configuration; keep %s as a backup.\n",
	       path, ledger_where(to), im.ngens, im.ncustody, im.ncerts, im.ncrls, abandoned, path);
	r = 0;
out:
	ledger_import_free(&im);
	ledger_close(to);
	ledger_close(from);
	close(lockfd);
	return r;
}

static int init_token(const struct signer_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "label", required_argument, NULL, 'l' },
		{ "so-pin-file", required_argument, NULL, 's' },
		{ "pin-file", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *module = NULL, *label = NULL, *so = NULL, *pin = NULL;
	int c, created = 0;

	(void)cfg;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm': module = optarg; break;
		case 'l': label = optarg; break;
		case 's': so = optarg; break;
		case 'p': pin = optarg; break;
		default: return 2;
		}
	}
	if (!module || !label || !so || !pin || optind != argc) {
		command_usage(stderr, "init-token");
		return 2;
	}
	if (token_init(module, label, so, pin, &created) != 0)
		return 1;
	printf("token '%s' %s\n", label, created ? "initialised" : "already exists: left as is");
	return 0;
}

/* The audit key's public half, as the signer exported it. */
static EVP_PKEY *load_pubkey(const char *path)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *k = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	if (k == NULL)
		fprintf(stderr, "sftca-signer verify-audit: %s: not a PEM public key%s%s\n", path,
			f ? "" : ": ", f ? "" : strerror(errno));
	return k;
}

/* verify-audit FILE... [--head FILE] [--key PEM]: the files oldest first;
 * one FILE named audit.log brings its rotated siblings audit.log.1... */
static int verify_audit(const struct signer_config *cfg, int argc, char **argv)
{
	const char *head = NULL, *keyp = NULL, **files = calloc((size_t)argc + 1, sizeof(*files));
	EVP_PKEY *key = NULL;
	char **own = NULL;
	size_t n = 0, nown = 0;
	unsigned long lines = 0;
	char why[512];
	int r = 2;

	(void)cfg;
	for (int i = 1; files && i < argc; i++) {
		if (strcmp(argv[i], "--head") == 0 && i + 1 < argc)
			head = argv[++i];
		else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
			keyp = argv[++i];
		else
			files[n++] = argv[i];
	}
	if (n == 0) {
		command_usage(stderr, "verify-audit");
		goto out;
	}
	if (keyp && (key = load_pubkey(keyp)) == NULL)
		goto out;
	if (n == 1 && (own = audit_rotated_set(files[0], &nown)) != NULL && nown > 0) {
		free(files);
		files = (const char **)own;
		n = nown;
	}
	if (audit_verify_signed(files, n, head, key, &lines, why, sizeof(why)) != 0) {
		printf("%s: BROKEN: %s\n", files[n - 1], why);
		r = 1;
		goto out;
	}
	if (n == 1)
		printf("%s: intact, %lu records%s\n", files[0], lines,
		       key ? "; the audit key's checkpoint matches" : "");
	else
		printf("%s: intact, %lu records in %zu files (%s first)%s\n", files[n - 1], lines, n,
		       files[0], key ? "; the audit key's checkpoint matches" : "");
	r = 0;
out:
	EVP_PKEY_free(key);
	if (own == NULL)
		free(files);
	for (size_t i = 0; own && i < nown; i++)
		free(own[i]);
	free(own);
	return r;
}

/* The modes besides serving. Those without a configuration are the first
 * word on the command line; the others follow --config FILE. */
static const struct command commands[] = {
	{ "import-ca", import_ca, 1,
	  "--ca ID --cert CACERT.pem --key CAKEY.pem [--custody shared|exclusive]",
	  "move an existing InternalCA into the token (signer stopped)" },
	{ "check-ledger", check_ledger, 1, "",
	  "check the ledger's integrity (signer stopped)" },
	{ "migrate-ledger", migrate_ledger, 1, "",
	  "copy the SQLite ledger into the empty PostgreSQL ledger of [ledger] url" },
	{ "verify-audit", verify_audit, 0, "FILE... [--head FILE] [--key PEM]",
	  "check the audit log's hash chain (and, with --key, its signed checkpoint)" },
	{ "init-token", init_token, 0, "--module SO --label LABEL --so-pin-file FILE --pin-file FILE",
	  "create the token (kept if it exists), PINs read from files" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *command_find(const char *name, int needs_config)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (commands[i].needs_config == needs_config && strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void command_synopsis(FILE *f, const struct command *c)
{
	fprintf(f, "sftca-signer %s%s%s%s\n", c->needs_config ? "--config FILE " : "", c->name,
		c->args[0] ? " " : "", c->args);
}

static void command_usage(FILE *f, const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0) {
			fprintf(f, "usage: ");
			command_synopsis(f, &commands[i]);
		}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sftca-signer --config FILE [--check-config] [--allow-root] [-v] "
		   "[--syslog]\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		fprintf(f, "       ");
		command_synopsis(f, &commands[i]);
	}
	fprintf(f, "\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\n"
		"Runs in the foreground until SIGTERM or SIGINT. The InternalCA keys stay in the\n"
		"PKCS#11 token named in [pkcs11]; see README.md for the configuration.\n"
		"  --config FILE    signer configuration (INI)\n"
		"  --check-config   validate the configuration and its files, then exit\n"
		"  --allow-root     run as root without dropping to [signer] user\n"
		"  -v, --verbose    debug logging\n"
		"  --syslog         log to syslog instead of stderr\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "allow-root", no_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "syslog", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd;
	struct signer_config cfg;
	const char *config = NULL;
	int c, check = 0, allow_root = 0, r;
	enum log_level level = LOG_LVL_INFO;
	enum log_style style = LOG_STYLE_DAEMON;

	/* Keys and PINs pass through this process: no core dumps, no swap. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 && errno != EPERM &&
	    errno != ENOMEM)
		perror("mlockall");
	umask(077);
	if (argc > 1 && (cmd = command_find(argv[1], 0)) != NULL) {
		log_init("sftca-signer", LOG_STYLE_CLI, LOG_LVL_INFO);
		return cmd->fn(NULL, argc - 1, argv + 1);
	}
	while ((c = getopt_long(argc, argv, "+c:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'k': check = 1; break;
		case 'R': allow_root = 1; break;
		case 'v': level = LOG_LVL_DEBUG; break;
		case 's': style = LOG_STYLE_SYSLOG; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("sftca-signer %s\n", SFTCA_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	log_init("sftca-signer", style, level);
	if (config == NULL) {
		usage(stderr);
		return 2;
	}
	if (config_load(config, &cfg) != 0 || config_validate(&cfg) != 0) {
		config_free(&cfg);
		return 1;
	}
	if (check) {
		r = check_config_files(&cfg) == 0 ? 0 : 1;
		if (r == 0)
			printf("%s: configuration OK\n", config);
	} else if (optind < argc && (cmd = command_find(argv[optind], 1)) != NULL) {
		r = cmd->fn(&cfg, argc - optind, argv + optind);
	} else if (optind < argc) {
		fprintf(stderr, "sftca-signer: unknown command '%s'\n", argv[optind]);
		r = 2;
	} else {
		r = serve(&cfg, allow_root);
	}
	config_free(&cfg);
	return r;
}
