/* The signer's RPC handlers fed arbitrary request bytes, against a real
 * signer core in this process: a SoftHSM2 token made in a temporary
 * directory, the SQLite ledger, the CA registry, the signing pool and the
 * audit log, opened the way signer/main.c's open_core does, with one CA
 * (ec:p256) created at start-up.
 *
 * Input: byte 0 picks the method (byte0 % signer_nmethods) and the
 * caller's role ((byte0 / signer_nmethods) % 3: admin, issuer limited to
 * the fuzz CA, auditor; a role the method does not allow is refused by the
 * server before any handler runs, so such inputs stop here too). The rest
 * is the request message, unpacked with the method's descriptor as the
 * server does (not a valid message: nothing to do). The handler's reply is
 * packed and unpacked again, as it would be sent.
 *
 * What is changed on the way, to keep runs fast and memory bounded:
 *  - CreateCA and RotateCA asking for an RSA key (or CreateCA for the
 *    default, rsa:2048) get ec:p256 instead: SoftHSM2 takes seconds for an
 *    RSA-4096 key. Unknown key types go through unchanged (refusal paths).
 *  - CreateCA is skipped once FUZZ_MAX_CAS CAs exist, and RenewCA/RotateCA
 *    once that CA has FUZZ_MAX_GENS generations: each success adds token
 *    objects and registry entries that live as long as the process.
 *  - A Revoke whose serial is "#N" revokes the N-th (mod FUZZ_RING) of the
 *    last serials IssueBatch returned: 128-bit random serials cannot be
 *    guessed, and without this revocation and CRLs with entries would never
 *    be reached.
 * The ledger and audit log still grow (on tmpfs) with every issuance.
 *
 * Environment: SOFTHSM_MODULE (default /usr/lib/softhsm/libsofthsm2.so),
 * SFTCA_FUZZ_TMPDIR (default /dev/shm, else $TMPDIR or /tmp). Exits 77 when
 * SoftHSM2 is missing. The directory is removed at exit; directories left
 * by crashed runs are removed by the next start. */
#include "fuzz_common.h"

#include "arena.h"
#include "audit.h"
#include "ca.h"
#include "clock.h"
#include "config.h"
#include "errors.h"
#include "handlers.h"
#include "ledger.h"
#include "ratelimit.h"
#include "rpc.h"
#include "signer.h"
#include "signpool.h"
#include "token.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <openssl/err.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_CA_ID "cdb123c8-4347-11ef-aca1-f3aa241412a1"
#define FUZZ_LABEL "fuzz"
#define FUZZ_PREFIX "sftca-fuzz-handlers."
#define FUZZ_MAX_CAS 8
#define FUZZ_MAX_GENS 6
#ifdef SFTCA_FUZZ_DEFAULT_MODULE
#define DEFAULT_MODULE SFTCA_FUZZ_DEFAULT_MODULE
#else
#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif

static char dir[512];
static struct signer_config cfg;
static struct signer core;
static struct authz_entry issuer_authz;
static char *issuer_cas[1] = { (char *)FUZZ_CA_ID };
static char ec_p256[] = "ec:p256";
#define FUZZ_RING 8
static char issued[FUZZ_RING][80]; /* serials IssueBatch returned, newest last */
static size_t issued_next;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Only the directory: the core stays open (SoftHSM2 is not unloaded, so
 * LeakSanitizer still sees its memory as reachable). */
static void cleanup(void)
{
	if (dir[0])
		rm_tree(dir);
}

/* Directories of earlier runs whose process is gone (a crash skips atexit). */
static void remove_stale(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[1024], *end;
		long pid;

		if (strncmp(e->d_name, FUZZ_PREFIX, strlen(FUZZ_PREFIX)) != 0)
			continue;
		errno = 0;
		pid = strtol(e->d_name + strlen(FUZZ_PREFIX), &end, 10);
		if (errno != 0 || *end != '.' || pid <= 0 || pid == (long)getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
		rm_tree(path);
	}
	closedir(d);
}

static void die(const char *what)
{
	fprintf(stderr, "fuzz_handlers: start-up failed: %s\n", what);
	exit(1);
}

static void write_file(const char *name, const char *text)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF || fclose(f) != 0)
		die(path);
}

static const char *tmp_base(void)
{
	const char *b = getenv("SFTCA_FUZZ_TMPDIR");

	if (b && b[0])
		return b;
	if (access("/dev/shm", W_OK | X_OK) == 0)
		return "/dev/shm";
	b = getenv("TMPDIR");
	return b && b[0] ? b : "/tmp";
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *module = getenv("SOFTHSM_MODULE"), *base = tmp_base();
	struct token_opts to = { 0 };
	struct ca_change res;
	struct token_call call = { 0 }; /* setup: the default wait */
	char text[2048], so_pin[600], user_pin[600], state[600];
	int created = 0, abandoned = 0;

	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_handlers");
	if (module == NULL || module[0] == '\0')
		module = DEFAULT_MODULE;
	if (access(module, R_OK) != 0) {
		fprintf(stderr, "fuzz_handlers: PKCS#11 module %s missing (apt-get install softhsm2); "
				"skipped\n",
			module);
		exit(77);
	}
	umask(077);
	remove_stale(base);
	snprintf(dir, sizeof(dir), "%s/" FUZZ_PREFIX "%ld.XXXXXX", base, (long)getpid());
	if (mkdtemp(dir) == NULL) {
		dir[0] = '\0';
		die("mkdtemp");
	}
	atexit(cleanup);
	snprintf(text, sizeof(text),
		 "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
		 "slots.removable = false\nslots.mechanisms = ALL\nlibrary.reset_on_fork = false\n",
		 dir);
	write_file("softhsm2.conf", text);
	snprintf(text, sizeof(text), "%s/softhsm2.conf", dir);
	setenv("SOFTHSM2_CONF", text, 1);
	snprintf(text, sizeof(text), "%s/tokens", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	if (mkdir(text, 0700) != 0 || mkdir(state, 0700) != 0)
		die("mkdir");
	/* Fixed PINs: this token lives for one run in a private directory. */
	write_file("so.pin", "fuzz-so-pin-0123456789");
	write_file("user.pin", "fuzz-user-pin-0123456789");
	snprintf(so_pin, sizeof(so_pin), "%s/so.pin", dir);
	snprintf(user_pin, sizeof(user_pin), "%s/user.pin", dir);
	if (token_init(module, FUZZ_LABEL, so_pin, user_pin, &created) != 0)
		die("token_init");

	/* The configuration goes through the real parser. */
	snprintf(text, sizeof(text),
		 "[signer]\nlisten = unix:%s/signer.sock\nstate_dir = %s\nsessions = 2\n"
		 "[pkcs11]\nmodule = %s\ntoken_label = " FUZZ_LABEL "\npin_file = %s\n"
		 "[limits]\nmax_batch = 64\n",
		 dir, state, module, user_pin);
	if (config_parse_string("fuzz-signer.conf", text, strlen(text), &cfg) != 0 ||
	    config_validate(&cfg) != 0)
		die("configuration");

	/* open_core() of signer/main.c, without the recovery thread. */
	to = (struct token_opts){ cfg.module, cfg.token_label, cfg.pin_file, cfg.sessions, 0 };
	core.cfg = &cfg;
	if (token_open(&to, &core.token) != 0)
		die("token_open");
	if (ledger_open(cfg.state_dir, &core.ledger, &abandoned) != 0)
		die("ledger_open");
	if (audit_open(cfg.state_dir, &core.audit) != 0)
		die("audit_open");
	if (ca_registry_load(core.token, core.ledger, &core.cas) != 0)
		die("ca_registry_load");
	if ((core.pool = signpool_new(cfg.sessions)) == NULL ||
	    (core.issue_rl = ratelimit_new(cfg.issue_rate, cfg.issue_burst)) == NULL)
		die("signpool/ratelimit");
	if (ca_create(core.cas, FUZZ_CA_ID, "ec:p256", 3650, "cn=fuzz-init", &call, &res) != 0)
		die(msg_isset(&res.message) ? res.message.text : "ca_create");

	issuer_authz.cn = (char *)"fuzz-issuer";
	issuer_authz.role = ROLE_ISSUER;
	issuer_authz.cas = issuer_cas;
	issuer_authz.ncas = 1;
	ERR_clear_error();
	return 0;
}

static int gens_visit(void *arg, const char *ca_id, const char *subject,
		      const struct ledger_gen *const *gens, size_t n, unsigned active,
		      enum ca_custody custody)
{
	(void)ca_id, (void)subject, (void)gens, (void)active, (void)custody;
	*(size_t *)arg = n;
	return 0;
}

/* Generations of ca_id (0 for an unknown CA). */
static size_t gen_count(const char *ca_id)
{
	size_t n = 0;

	(void)ca_foreach(core.cas, ca_id, gens_visit, &n);
	return n;
}

static int cas_visit(void *arg, const char *ca_id, const char *subject,
		     const struct ledger_gen *const *gens, size_t n, unsigned active,
		     enum ca_custody custody)
{
	(void)ca_id, (void)subject, (void)gens, (void)n, (void)active, (void)custody;
	(*(size_t *)arg)++;
	return 0;
}

static size_t ca_count(void)
{
	size_t n = 0;

	(void)ca_foreach(core.cas, NULL, cas_visit, &n);
	return n;
}

static int is_rsa_or_default(const char *kt, int empty_is_rsa)
{
	return (kt[0] == '\0' && empty_is_rsa) || strcmp(kt, "rsa:2048") == 0 ||
	       strcmp(kt, "rsa:3072") == 0 || strcmp(kt, "rsa:4096") == 0;
}

/* Adjust req as the header comment says; 0 means skip this input.
 * *field receives the key_type field to restore (to *orig) before freeing. */
static int tame(const struct server_method *m, ProtobufCMessage *req, char ***field, char **orig)
{
	*field = NULL;
	if (m->fn == rpc_create_ca) {
		Sftca__V1__CreateCARequest *q = (void *)req;
		if (ca_count() >= FUZZ_MAX_CAS)
			return 0;
		if (is_rsa_or_default(q->key_type, 1))
			*field = &q->key_type;
	} else if (m->fn == rpc_rotate_ca) {
		Sftca__V1__RotateCARequest *q = (void *)req;
		if (gen_count(q->ca_id) >= FUZZ_MAX_GENS)
			return 0;
		if (is_rsa_or_default(q->key_type, 0))
			*field = &q->key_type;
	} else if (m->fn == rpc_renew_ca) {
		Sftca__V1__RenewCARequest *q = (void *)req;
		if (gen_count(q->ca_id) >= FUZZ_MAX_GENS)
			return 0;
	} else if (m->fn == rpc_revoke) {
		Sftca__V1__RevokeRequest *q = (void *)req;
		size_t i = q->serial[0] == '#' ? (unsigned char)q->serial[1] % FUZZ_RING : 0;
		if (q->serial[0] == '#' && q->serial[1] && issued[i][0]) {
			*field = &q->serial;
			*orig = q->serial;
			q->serial = issued[i];
		}
		return 1;
	}
	if (*field) {
		*orig = **field;
		**field = ec_p256;
	}
	return 1;
}

static void remember_serials(const Sftca__V1__IssueBatchResponse *r)
{
	for (size_t i = 0; i < r->n_results; i++) {
		if (r->results[i]->code != 0 || r->results[i]->serial[0] == '\0')
			continue;
		snprintf(issued[issued_next % FUZZ_RING], sizeof(issued[0]), "%s",
			 r->results[i]->serial);
		issued_next++;
	}
}

/* The reply as the server would send it: packed, and readable again. */
static void check_reply(const ProtobufCMessage *resp)
{
	size_t n = protobuf_c_message_get_packed_size(resp);
	uint8_t *buf = malloc(n ? n : 1);
	ProtobufCMessage *back;

	FUZZ_CHECK(buf != NULL);
	FUZZ_CHECK(protobuf_c_message_pack(resp, buf) == n);
	back = protobuf_c_message_unpack(resp->descriptor, NULL, n, buf);
	FUZZ_CHECK(back != NULL);
	protobuf_c_message_free_unpacked(back, NULL);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum role roles[] = { ROLE_ADMIN, ROLE_ISSUER, ROLE_AUDITOR };
	const struct server_method *m;
	struct caller who = { .peer = "fuzz" };
	ProtobufCMessage *req = NULL, *resp = NULL;
	struct arena *a;
	struct signer_call call = { .token = { .deadline_ms = 0 } };
	char **field = NULL, *orig = NULL;
	int r;

	if (size == 0)
		return 0;
	m = &signer_methods[data[0] % signer_nmethods];
	who.role = roles[(data[0] / signer_nmethods) % 3];
	/* The server's role check comes before any handler. */
	if (m->min_role != ROLE_NONE && who.role < m->min_role)
		return 0;
	if (who.role == ROLE_ISSUER) {
		snprintf(who.identity, sizeof(who.identity), "cn=%s", issuer_authz.cn);
		who.authz = &issuer_authz;
	} else {
		snprintf(who.identity, sizeof(who.identity), "cn=fuzz-%s", role_name(who.role));
	}
	if (rpc_unpack_bytes(data + 1, size - 1, m->request, &req) != 0)
		return 0;
	if (!tame(m, req, &field, &orig)) {
		protobuf_c_message_free_unpacked(req, NULL);
		return 0;
	}
	FUZZ_CHECK((a = arena_new()) != NULL);
	call.token.deadline_ms = clock_monotonic_ms() + 5000;
	r = m->fn(&core, &who, req, a, &resp, &call);
	if (r == 0) {
		FUZZ_CHECK(resp != NULL);
		check_reply(resp);
		if (m->fn == rpc_issue_batch)
			remember_serials((const void *)resp);
	} else {
		FUZZ_CHECK(fuzz_terminated(call.msg.text, sizeof(call.msg.text)));
		FUZZ_CHECK(sftca_strerror(r) != NULL);
	}
	if (field)
		*field = orig;
	protobuf_c_message_free_unpacked(req, NULL);
	arena_free(a);
	ERR_clear_error();
	return 0;
}
