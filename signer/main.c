/* sftca-signer: holds the InternalCA keys in a PKCS#11 token and issues
 * sftunnel certificates over gRPC. */
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

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sftca-signer --config FILE [--check-config] [--allow-root] [-v] [--syslog]\n"
		"       sftca-signer --config FILE import-ca --ca ID --cert CACERT.pem --key CAKEY.pem\n"
		"       sftca-signer --config FILE check-ledger\n"
		"       sftca-signer verify-audit FILE [--head FILE]\n"
		"       sftca-signer init-token --module SO --label LABEL --so-pin-file F --pin-file F\n"
		"\n"
		"Runs in the foreground until SIGTERM or SIGINT. The InternalCA keys stay in the\n"
		"PKCS#11 token named in [pkcs11]; see README.md for the configuration.\n"
		"  --config FILE    signer configuration (INI)\n"
		"  --check-config   validate the configuration and its files, then exit\n"
		"  --allow-root     run as root without dropping to [signer] user\n"
		"  -v, --verbose    debug logging\n"
		"  --syslog         log to syslog instead of stderr\n");
}

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
static int check_state_files(const char *dir, const struct owner *o)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	int r = 0;

	if (d == NULL) {
		log_error("state_dir %s cannot be read: %s", dir, strerror(errno));
		return SFTCA_ERR_CONFIG;
	}
	while (r == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_uid == o->uid)
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

static int prepare_state_dir(const char *dir, const struct owner *o)
{
	struct stat st;

	if (mkdir(dir, 0700) == 0) {
		if (o->uid != geteuid() && chown(dir, o->uid, o->gid) != 0) {
			log_error("state_dir %s cannot be given to %s: %s", dir, o->name,
				  strerror(errno));
			return SFTCA_ERR_CONFIG;
		}
	} else if (errno != EEXIST) {
		log_error("state_dir %s cannot be created: %s", dir, strerror(errno));
		return SFTCA_ERR_CONFIG;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		log_error("state_dir %s is not a directory", dir);
		return SFTCA_ERR_CONFIG;
	}
	if (st.st_uid != o->uid) {
		log_error("state_dir %s belongs to uid %u, but the signer runs as %s (uid %u): "
			  "chown -R %u:%u %s",
			  dir, (unsigned)st.st_uid, o->name ? o->name : "this user", (unsigned)o->uid,
			  (unsigned)o->uid, (unsigned)o->gid, dir);
		return SFTCA_ERR_CONFIG;
	}
	if ((st.st_mode & 077) && chmod(dir, 0700) != 0) {
		log_error("state_dir %s has mode %04o and cannot be made 0700", dir,
			  (unsigned)(st.st_mode & 07777));
		return SFTCA_ERR_CONFIG;
	}
	if (access(dir, W_OK | X_OK) != 0) {
		log_error("state_dir %s is not writable: %s", dir, strerror(errno));
		return SFTCA_ERR_CONFIG;
	}
	return check_state_files(dir, o);
}

/* One signer (or maintenance command) per state directory at a time. */
static int lock_state_dir(const char *dir, const char *who, const struct owner *o)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/signer.lock", dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (o->uid != geteuid() && fchown(fd, o->uid, o->gid) != 0) {
		log_error("%s: cannot be given to %s: %s", path, o->name, strerror(errno));
		close(fd);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		log_error("%s: the state directory %s is in use by a running signer; stop it first",
			  who, dir);
		close(fd);
		return -1;
	}
	return fd;
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
			const struct ledger_gen *const *gens, size_t n, unsigned active)
{
	int64_t now = time(NULL);

	(void)arg, (void)subject;
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

/* Unix sockets bound as root go to the user too, so that its group
 * decides who may connect. */
static int give_sockets(const struct signer_config *cfg, const struct owner *o)
{
	for (size_t i = 0; o->name && i < cfg->nlisten; i++) {
		const char *path = cfg->listen[i] + 5;
		if (strncmp(cfg->listen[i], "unix:", 5) != 0)
			continue;
		if (chown(path, o->uid, o->gid) != 0) {
			log_error("%s: cannot be given to %s: %s", path, o->name, strerror(errno));
			return -1;
		}
	}
	return 0;
}

struct runtime {
	struct signer s;
	struct server *srv;
	int lockfd;
};

/* Open token, ledger, audit log and CAs in that order. */
static int open_core(const struct signer_config *cfg, struct signer *s, int recover)
{
	struct token_opts to = { cfg->module, cfg->token_label, cfg->pin_file, cfg->sessions,
				 recover };
	int abandoned = 0, r;

	s->cfg = cfg;
	if ((r = token_open(&to, &s->token)) != 0)
		return r;
	if ((r = ledger_open(cfg->state_dir, &s->ledger, &abandoned)) != 0)
		return r;
	if (abandoned > 0)
		log_warn("%d serials left pending by an interrupted run are now abandoned (never "
			 "reused)",
			 abandoned);
	if ((r = audit_open(cfg->state_dir, &s->audit)) != 0)
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ca = NULL, *certp = NULL, *keyp = NULL;
	struct signer s = { 0 };
	struct owner own;
	struct ca_change res;
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
		case 'h':
			printf("usage: sftca-signer --config FILE import-ca --ca ID --cert CACERT.pem "
			       "--key CAKEY.pem\n\nMoves an existing InternalCA into the token as a "
			       "non-extractable key and records it as generation 1.\nThe key file "
			       "must be mode 0600. Run it with the signer stopped.\n");
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
	r = ca_import(s.cas, ca, cert, key, requester, &res);
	audit_log(s.audit, "ca.import", requester, ca, r == 0 ? "ok" : "refused",
		  json_pack("{s:s, s:s}", "cert", certp, "message", r ? res.message : ""));
	if (r != 0) {
		log_error("import of CA %s refused: %s", ca,
			  res.message[0] ? res.message : sftca_strerror(r));
		r = 1;
		goto out;
	}
	printf("CA %s imported into token '%s' as generation 1 (key non-extractable).\n"
	       "The file %s still holds the private key: destroy it now, e.g.\n"
	       "    shred -u %s\n",
	       ca, cfg->token_label, keyp, keyp);
	r = 0;
out:
	close_core(&s);
	X509_free(cert);
	EVP_PKEY_free(key);
	if (lockfd >= 0)
		close(lockfd);
	return r;
}

static int check_ledger(const struct signer_config *cfg)
{
	struct ledger *l = NULL;
	struct owner own;
	unsigned problems = 0;
	int abandoned = 0, lockfd, r;

	if (state_owner(cfg, &own) != 0 ||
	    (lockfd = lock_state_dir(cfg->state_dir, "check-ledger", &own)) < 0)
		return 1;
	if (drop_privileges(&own) != 0) {
		close(lockfd);
		return 1;
	}
	if ((r = ledger_open(cfg->state_dir, &l, &abandoned)) == 0)
		r = ledger_check(l, &problems);
	ledger_close(l);
	close(lockfd);
	if (r != 0)
		return 1;
	printf("ledger %s/ledger.db: %s (%u problem%s; %d pending rows marked abandoned now)\n",
	       cfg->state_dir, problems ? "DAMAGED" : "intact", problems, problems == 1 ? "" : "s",
	       abandoned);
	return problems ? 1 : 0;
}

static int init_token(int argc, char **argv)
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
		fprintf(stderr, "usage: sftca-signer init-token --module SO --label LABEL "
				"--so-pin-file FILE --pin-file FILE\n");
		return 2;
	}
	if (token_init(module, label, so, pin, &created) != 0)
		return 1;
	printf("token '%s' %s\n", label, created ? "initialised" : "already exists: left as is");
	return 0;
}

static int verify_audit(int argc, char **argv)
{
	const char *head = NULL;
	unsigned long lines = 0;
	char why[512];

	if (argc == 4 && strcmp(argv[2], "--head") == 0)
		head = argv[3];
	else if (argc != 2) {
		fprintf(stderr, "usage: sftca-signer verify-audit FILE [--head FILE]\n");
		return 2;
	}
	if (audit_verify_file(argv[1], head, &lines, why, sizeof(why)) != 0) {
		printf("%s: BROKEN: %s\n", argv[1], why);
		return 1;
	}
	printf("%s: intact, %lu records\n", argv[1], lines);
	return 0;
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
	if (argc > 1 && strcmp(argv[1], "init-token") == 0) {
		log_init("sftca-signer", LOG_STYLE_CLI, LOG_LVL_INFO);
		return init_token(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "verify-audit") == 0) {
		log_init("sftca-signer", LOG_STYLE_CLI, LOG_LVL_INFO);
		return verify_audit(argc - 1, argv + 1);
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
	} else if (optind < argc && strcmp(argv[optind], "import-ca") == 0) {
		r = import_ca(&cfg, argc - optind, argv + optind);
	} else if (optind < argc && strcmp(argv[optind], "check-ledger") == 0) {
		r = check_ledger(&cfg);
	} else if (optind < argc) {
		fprintf(stderr, "sftca-signer: unknown command '%s'\n", argv[optind]);
		r = 2;
	} else {
		r = serve(&cfg, allow_root);
	}
	config_free(&cfg);
	return r;
}
