/* p11shim: a PKCS#11 module for tests that wraps a real one (SoftHSM2) and
 * returns chosen errors from chosen functions on command.
 *
 *   SFTCA_SHIM_MODULE   the real module (default SoftHSM2)
 *   SFTCA_SHIM_CONTROL  a file of rules, re-read whenever it changes:
 *                         FUNCTION RV [COUNT [SKIP]]  e.g. "C_Sign CKR_DEVICE_ERROR"
 *                       RV "HANG" blocks the call until the rule is gone
 *                       from the file, then fails it with CKR_DEVICE_ERROR
 *                       (a module call that does not return, like p11-kit's
 *                       client after a dropped connection). RV "HOLD"
 *                       blocks it the same way, then lets it through: a
 *                       slow token whose calls are in flight for exactly
 *                       as long as a test needs.
 *                       FUNCTION "*" matches every wrapped function; COUNT
 *                       limits how many calls fail (default: all until the
 *                       rule is removed), after SKIP calls that pass. An
 *                       empty file: pass everything. A C_Sign rule may end
 *                       in a key label prefix (FUNCTION RV COUNT SKIP
 *                       PREFIX): then only signatures with such a key match
 *                       (a CA key's, not the audit key's checkpoint).
 *   SFTCA_SHIM_LOG      a file that gets one line per call of C_Initialize,
 *                       C_Finalize and C_Login (with the result), so tests
 *                       can count logins; and of C_Sign too when
 *                       SFTCA_SHIM_LOG_SIGN is set (to prove nothing was signed):
 *                       "C_Sign RV LABEL", LABEL the CKA_LABEL of the key
 *                       given to C_SignInit on that session ("?" if unknown),
 *                       so a test can tell a CA key's signature from the
 *                       audit key's checkpoint;
 *                       and "FUNCTION held" when a HOLD rule starts holding a call.
 *
 * Not part of the product: the signer's own PKCS#11 code is signer/token.c. */
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_RULES 16
#define RV_HANG ((CK_RV)-1)
#define RV_HOLD ((CK_RV)-2)

struct rule {
	char fn[64];
	CK_RV rv;
	long left; /* -1 = unlimited */
	long skip; /* calls to let through first */
	char key[128]; /* C_Sign: key label prefix, "" = any key */
};

static CK_FUNCTION_LIST real_copy, shim;
static CK_FUNCTION_LIST_PTR real;
static void *dl;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct rule rules[MAX_RULES];
static int nrules;
static struct timespec control_mtime;
static off_t control_size = -1;

/* The key each session's signing operation uses, for the C_Sign log line. */
#define MAX_SIGNERS 256
static struct {
	CK_SESSION_HANDLE s;
	char label[128];
} signers[MAX_SIGNERS];

static const struct {
	const char *name;
	CK_RV rv;
} codes[] = {
	{ "CKR_OK", CKR_OK },
	{ "CKR_DEVICE_ERROR", CKR_DEVICE_ERROR },
	{ "CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED },
	{ "CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT },
	{ "CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID },
	{ "CKR_SESSION_CLOSED", CKR_SESSION_CLOSED },
	{ "CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN },
	{ "CKR_PIN_INCORRECT", CKR_PIN_INCORRECT },
	{ "CKR_PIN_LOCKED", CKR_PIN_LOCKED },
	{ "CKR_GENERAL_ERROR", CKR_GENERAL_ERROR },
	{ "CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED },
	{ "CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY },
	{ "HANG", RV_HANG },
	{ "HOLD", RV_HOLD },
};

static void shim_log_text(const char *fn, const char *what)
{
	const char *path = getenv("SFTCA_SHIM_LOG");
	FILE *f;

	if (path == NULL || (f = fopen(path, "a")) == NULL)
		return;
	fprintf(f, "%s %s\n", fn, what);
	fclose(f);
}

static void shim_log(const char *fn, CK_RV rv)
{
	char num[32];

	snprintf(num, sizeof(num), "%lu", (unsigned long)rv);
	shim_log_text(fn, num);
}

/* Re-read the control file when its mtime or size changed. */
static void load_rules(void)
{
	const char *path = getenv("SFTCA_SHIM_CONTROL");
	struct stat st;
	char line[256];
	FILE *f;

	if (path == NULL)
		return;
	if (stat(path, &st) != 0) {
		nrules = 0;
		control_size = -1;
		return;
	}
	if (st.st_mtim.tv_sec == control_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == control_mtime.tv_nsec && st.st_size == control_size)
		return;
	control_mtime = st.st_mtim;
	control_size = st.st_size;
	nrules = 0;
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (nrules < MAX_RULES && fgets(line, sizeof(line), f)) {
		char fn[64], code[64], key[128] = "";
		long count = -1, skip = 0;
		int n = sscanf(line, "%63s %63s %ld %ld %127s", fn, code, &count, &skip, key);
		if (n < 2 || fn[0] == '#')
			continue;
		for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
			if (strcmp(codes[i].name, code) == 0) {
				snprintf(rules[nrules].fn, sizeof(rules[nrules].fn), "%s", fn);
				rules[nrules].rv = codes[i].rv;
				rules[nrules].left = n >= 3 ? count : -1;
				rules[nrules].skip = n >= 4 ? skip : 0;
				snprintf(rules[nrules].key, sizeof(rules[nrules].key), "%s", n == 5 ? key : "");
				nrules++;
			}
	}
	fclose(f);
}

/* CKR_OK to pass the call through, or the error to return. key: the label
 * of the key a C_Sign uses, else NULL (rules naming a key do not match). */
static CK_RV fault_key(const char *fn, const char *key)
{
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&mu);
	load_rules();
	for (int i = 0; i < nrules; i++) {
		if ((strcmp(rules[i].fn, fn) == 0 || strcmp(rules[i].fn, "*") == 0) &&
		    rules[i].left != 0 &&
		    (rules[i].key[0] == '\0' ||
		     (key != NULL && strncmp(key, rules[i].key, strlen(rules[i].key)) == 0))) {
			if (rules[i].skip > 0) {
				rules[i].skip--;
				continue;
			}
			if (rules[i].left > 0)
				rules[i].left--;
			rv = rules[i].rv;
			break;
		}
	}
	if (rv == RV_HOLD)
		shim_log_text(fn, "held");
	while (rv == RV_HANG || rv == RV_HOLD) {
		CK_RV waiting = rv;
		int held = 0;

		pthread_mutex_unlock(&mu);
		usleep(50 * 1000);
		pthread_mutex_lock(&mu);
		load_rules();
		for (int i = 0; i < nrules; i++)
			held |= rules[i].rv == waiting &&
				(strcmp(rules[i].fn, fn) == 0 || strcmp(rules[i].fn, "*") == 0);
		if (!held)
			rv = waiting == RV_HANG ? CKR_DEVICE_ERROR : CKR_OK;
	}
	pthread_mutex_unlock(&mu);
	return rv;
}

static CK_RV fault(const char *fn)
{
	return fault_key(fn, NULL);
}

#define FAULT(name) \
	do { \
		CK_RV frv = fault(#name); \
		if (frv != CKR_OK) \
			return frv; \
	} while (0)

static CK_RV w_Initialize(CK_VOID_PTR args)
{
	CK_RV rv = fault("C_Initialize");
	if (rv == CKR_OK)
		rv = real->C_Initialize(args);
	shim_log("C_Initialize", rv);
	return rv;
}

static CK_RV w_Finalize(CK_VOID_PTR r)
{
	CK_RV rv = real->C_Finalize(r);
	shim_log("C_Finalize", rv);
	return rv;
}

static CK_RV w_Login(CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	CK_RV rv = fault("C_Login");
	if (rv == CKR_OK)
		rv = real->C_Login(s, u, pin, len);
	shim_log("C_Login", rv);
	return rv;
}

static CK_RV w_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR n)
{
	FAULT(C_GetSlotList);
	return real->C_GetSlotList(present, list, n);
}

static CK_RV w_OpenSession(CK_SLOT_ID slot, CK_FLAGS fl, CK_VOID_PTR app, CK_NOTIFY nt,
			   CK_SESSION_HANDLE_PTR s)
{
	FAULT(C_OpenSession);
	return real->C_OpenSession(slot, fl, app, nt, s);
}

/* Remember (s -> k's label) when C_Sign is logged; "?" when the label cannot
 * be read or the table is full, which a test counts like any other key. */
static void note_signer(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k)
{
	char label[128] = "?";
	CK_ATTRIBUTE a = { CKA_LABEL, label, sizeof(label) - 1 };
	int slot = -1;

	if (real->C_GetAttributeValue(s, k, &a, 1) == CKR_OK && a.ulValueLen > 0 &&
	    a.ulValueLen < sizeof(label))
		label[a.ulValueLen] = '\0';
	else
		snprintf(label, sizeof(label), "?");
	pthread_mutex_lock(&mu);
	for (int i = 0; i < MAX_SIGNERS; i++) {
		if (signers[i].s == s) {
			slot = i;
			break;
		}
		if (slot < 0 && signers[i].s == 0)
			slot = i;
	}
	if (slot >= 0) {
		signers[slot].s = s;
		snprintf(signers[slot].label, sizeof(signers[slot].label), "%s", label);
	}
	pthread_mutex_unlock(&mu);
}

/* The label of the key session s signs with, "?" when unknown. */
static void signer_label(CK_SESSION_HANDLE s, char label[128])
{
	snprintf(label, 128, "?");
	pthread_mutex_lock(&mu);
	for (int i = 0; i < MAX_SIGNERS; i++)
		if (signers[i].s == s) {
			snprintf(label, 128, "%s", signers[i].label);
			break;
		}
	pthread_mutex_unlock(&mu);
}

static void log_sign(const char *label, CK_RV rv)
{
	char what[160];

	snprintf(what, sizeof(what), "%lu %s", (unsigned long)rv, label);
	shim_log_text("C_Sign", what);
}

static CK_RV w_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	FAULT(C_SignInit);
	/* For the C_Sign log line and rules naming a key; before the call: no
	 * object call while an operation is active. */
	note_signer(s, k);
	return real->C_SignInit(s, m, k);
}

static CK_RV w_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl_, CK_BYTE_PTR sig,
		    CK_ULONG_PTR sl)
{
	char label[128];
	CK_RV rv;

	signer_label(s, label);
	if ((rv = fault_key("C_Sign", label)) != CKR_OK) {
		/* A real device that fails mid-operation ends the operation too. */
		CK_BYTE tmp[1024];
		CK_ULONG tl = sizeof(tmp);
		real->C_Sign(s, d, dl_, tmp, &tl);
		return rv;
	}
	rv = real->C_Sign(s, d, dl_, sig, sl);
	if (getenv("SFTCA_SHIM_LOG_SIGN") && sig != NULL)
		log_sign(label, rv);
	return rv;
}

static CK_RV w_FindObjectsInit(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
	FAULT(C_FindObjectsInit);
	return real->C_FindObjectsInit(s, t, n);
}

static CK_RV w_GenerateKeyPair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pt,
			       CK_ULONG pn, CK_ATTRIBUTE_PTR vt, CK_ULONG vn,
			       CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv)
{
	FAULT(C_GenerateKeyPair);
	return real->C_GenerateKeyPair(s, m, pt, pn, vt, vn, pub, priv);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	const char *path = getenv("SFTCA_SHIM_MODULE");
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);

	if (real == NULL) {
		if ((dl = dlopen(path ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL)) == NULL)
			return CKR_GENERAL_ERROR;
		*(void **)&get = dlsym(dl, "C_GetFunctionList");
		if (get == NULL || get(&real) != CKR_OK)
			return CKR_GENERAL_ERROR;
		real_copy = *real;
		shim = real_copy;
		shim.C_Initialize = w_Initialize;
		shim.C_Finalize = w_Finalize;
		shim.C_Login = w_Login;
		shim.C_GetSlotList = w_GetSlotList;
		shim.C_OpenSession = w_OpenSession;
		shim.C_SignInit = w_SignInit;
		shim.C_Sign = w_Sign;
		shim.C_FindObjectsInit = w_FindObjectsInit;
		shim.C_GenerateKeyPair = w_GenerateKeyPair;
	}
	*list = &shim;
	return CKR_OK;
}
