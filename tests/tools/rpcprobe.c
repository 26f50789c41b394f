/* rpcprobe: raw calls to the signer for tests (health checks, refusals,
 * hostile request bytes, load). Not installed.
 *
 *   rpcprobe [--signer ADDR] [--tls-cert F --tls-key F] [--tls-ca F]
 *            [--timeout S] [--repeat N] [--at UNIX_MS] COMMAND
 *
 *   health
 *       grpc.health.v1.Health/Check; prints SERVING / NOT_SERVING
 *   call METHOD [HEXBYTES | @FILE]
 *       METHOD ("/pkg.Service/Method") with the given request bytes
 *   issue CA_ID OUTDIR UUID=CSR.der...
 *       one IssueBatch; prints "ITEM i STATUS serial message" per item and
 *       writes each certificate to OUTDIR/i.pem
 *   hold METHOD N
 *       N calls of METHOD that send their headers and never a message (a
 *       client holding call slots). Once every call's headers are out and a
 *       health check on the same channel has come back (so the signer has
 *       seen them), prints "HELD N"; then one "STATUS_NAME details" line per
 *       call as each ends (--timeout is their deadline).
 *   rpc METHOD [FIELD=VALUE]...
 *       a well-formed request built from the generated descriptors. METHOD
 *       is a sftca.v1.Signer method (GetStatus, IssueBatch, ...), or
 *       Health/Check, or a full path. VALUE is text for strings and numbers,
 *       true/false for bools, a name or number for enums, @FILE for bytes;
 *       a message field takes SUB=VALUE[,SUB=VALUE...], and a repeated field
 *       may be given several times (IssueBatch ca_id=ID
 *       items=peer_uuid=UUID,csr_der=@csr.der). On OK the reply follows as
 *       one FIELD=VALUE line per field (nested: results.0.serial=...; bytes
 *       as "<N bytes>"; newlines in strings as \n).
 *
 * Every call prints "STATUS_NAME details" first (health prints only the
 * serving status when OK). --repeat N runs the command N times on one
 * channel, back to back. --at UNIX_MS connects first (with a health check
 * whose outcome is ignored) and waits until that wall-clock time before the
 * first call, so that probes started in parallel reach the signer together.
 * Exits 0 when every call completed with OK, 1 otherwise, 2 on usage or
 * input errors. */
#include "errors.h"
#include "fileio.h"
#include "grpc/health/v1/health.pb-c.h"
#include "log.h"
#include "rpc.h"
#include "sftca/v1/signer.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdint.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEALTH_PATH "/grpc.health.v1.Health/Check"

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rpcprobe: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static char *slurp(const char *path, size_t *len)
{
	char *buf = NULL;
	size_t n;

	if (file_read_all(path, 256u << 20, &buf, &n) != 0)
		die("cannot read %s", path);
	if (len)
		*len = n;
	return buf;
}

static unsigned char *unhex(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2;
	unsigned char *b = malloc(n ? n : 1);

	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			die("bad hex %s", hex);
		b[i] = (unsigned char)v;
	}
	*len = n;
	return b;
}

static void print_status(const struct rpc_result *res)
{
	printf("%s %s\n", rpc_status_name(res->status), res->details);
}

/* --- health, call, issue ----------------------------------------------------- */

static int probe_health(struct rpc_client *c, int timeout, int quiet)
{
	Grpc__Health__V1__HealthCheckRequest q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct rpc_result res;
	int r = rpc_call(c, HEALTH_PATH, &q.base, &grpc__health__v1__health_check_response__descriptor,
			 timeout, &resp, &res);

	if (quiet) {
		/* warm-up only */
	} else if (r == 0) {
		const Grpc__Health__V1__HealthCheckResponse *h = (const void *)resp;
		printf("%s\n", h->status == 1 ? "SERVING" : h->status == 2 ? "NOT_SERVING" : "UNKNOWN");
	} else {
		print_status(&res);
	}
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

static int probe_raw(struct rpc_client *c, const char *method, const unsigned char *req,
		     size_t len, int timeout)
{
	ProtobufCMessage *resp = NULL;
	struct rpc_result res;
	int r = rpc_call_raw(c, method, req, len, &sftca__v1__get_status_response__descriptor,
			     timeout, &resp, &res);

	/* The reply type differs per method; only the status matters here. */
	if (r == SFTCA_ERR_INVALID && res.status == GRPC_STATUS_OK)
		r = 0;
	print_status(&res);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

static void write_cert(const char *outdir, size_t i, const ProtobufCBinaryData *der)
{
	char path[4096];
	const unsigned char *p = der->data;
	X509 *x = d2i_X509(NULL, &p, (long)der->len);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%zu.pem", outdir, i);
	if (x && (f = fopen(path, "w")) != NULL) {
		PEM_write_X509(f, x);
		fclose(f);
	}
	X509_free(x);
}

static Sftca__V1__IssueBatchRequest *issue_request(const char *ca, int n, char **items)
{
	Sftca__V1__IssueBatchRequest *q = calloc(1, sizeof(*q));
	Sftca__V1__IssueItem *it = calloc((size_t)n, sizeof(*it));
	Sftca__V1__IssueItem **ptrs = calloc((size_t)n, sizeof(*ptrs));

	sftca__v1__issue_batch_request__init(q);
	for (int i = 0; i < n; i++) {
		const char *eq = strchr(items[i], '=');
		if (eq == NULL)
			die("item \"%s\" is not UUID=FILE", items[i]);
		sftca__v1__issue_item__init(&it[i]);
		it[i].peer_uuid = strndup(items[i], (size_t)(eq - items[i]));
		it[i].csr_der.data = (uint8_t *)slurp(eq + 1, &it[i].csr_der.len);
		ptrs[i] = &it[i];
	}
	q->ca_id = (char *)ca;
	q->items = ptrs;
	q->n_items = (size_t)n;
	return q;
}

static void issue_request_free(Sftca__V1__IssueBatchRequest *q)
{
	for (size_t i = 0; i < q->n_items; i++) {
		free(q->items[i]->peer_uuid);
		free(q->items[i]->csr_der.data);
	}
	free(q->n_items ? q->items[0] : NULL);
	free(q->items);
	free(q);
}

static int probe_issue(struct rpc_client *c, const Sftca__V1__IssueBatchRequest *q,
		       const char *outdir, int timeout)
{
	ProtobufCMessage *resp = NULL;
	struct rpc_result res;
	int r = rpc_call(c, "/sftca.v1.Signer/IssueBatch", &q->base,
			 &sftca__v1__issue_batch_response__descriptor, timeout, &resp, &res);

	print_status(&res);
	if (r == 0) {
		const Sftca__V1__IssueBatchResponse *b = (const void *)resp;
		for (size_t i = 0; i < b->n_results; i++) {
			const Sftca__V1__IssueResult *ir = b->results[i];
			printf("ITEM %zu %s %s %s\n", i, rpc_status_name((grpc_status_code)ir->code),
			       ir->serial[0] ? ir->serial : "-", ir->message);
			if (ir->cert_der.len)
				write_cert(outdir, i, &ir->cert_der);
		}
	}
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

static int probe_hold(struct rpc_client *rc, const char *method, long long n, int timeout)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	grpc_slice mslice = grpc_slice_from_copied_string(method);
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
					     gpr_time_from_millis(timeout, GPR_TIMESPAN));
	struct held {
		grpc_call *call;
		grpc_metadata_array initial, trailers;
		grpc_status_code status;
		grpc_slice details;
	} *h = calloc((size_t)n, sizeof(*h));
	long long sent = 0, ended = 0;
	int failed = 0;

	if (h == NULL)
		die("%s", "out of memory");
	for (long long i = 0; i < n; i++) {
		grpc_op ops[1], st[2];
		h[i].call = grpc_channel_create_call(rpc_client_channel(rc), NULL, GRPC_PROPAGATE_DEFAULTS,
						     cq, mslice, NULL, deadline, NULL);
		grpc_metadata_array_init(&h[i].initial);
		grpc_metadata_array_init(&h[i].trailers);
		memset(ops, 0, sizeof(ops));
		memset(st, 0, sizeof(st));
		ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
		st[0].op = GRPC_OP_RECV_INITIAL_METADATA;
		st[0].data.recv_initial_metadata.recv_initial_metadata = &h[i].initial;
		st[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
		st[1].data.recv_status_on_client.trailing_metadata = &h[i].trailers;
		st[1].data.recv_status_on_client.status = &h[i].status;
		st[1].data.recv_status_on_client.status_details = &h[i].details;
		/* Tags: 2i = headers sent, 2i+1 = status. */
		if (grpc_call_start_batch(h[i].call, ops, 1, (void *)(intptr_t)(2 * i), NULL) != GRPC_CALL_OK ||
		    grpc_call_start_batch(h[i].call, st, 2, (void *)(intptr_t)(2 * i + 1), NULL) != GRPC_CALL_OK)
			die("%s", "cannot start a call");
	}
	while (ended < n) {
		grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		intptr_t tag = (intptr_t)ev.tag;

		if (ev.type != GRPC_OP_COMPLETE)
			die("%s", "completion queue failed");
		if (tag % 2 == 0) {
			if (++sent == n) {
				/* Behind the headers on the same connection. */
				probe_health(rc, timeout, 1);
				printf("HELD %lld\n", n);
				fflush(stdout);
			}
			continue;
		}
		struct held *e = &h[tag / 2];
		char *d = grpc_slice_to_c_string(e->details);
		printf("%s %s\n", rpc_status_name(e->status), d);
		fflush(stdout);
		gpr_free(d);
		failed |= e->status != GRPC_STATUS_OK;
		ended++;
	}
	for (long long i = 0; i < n; i++) {
		grpc_metadata_array_destroy(&h[i].initial);
		grpc_metadata_array_destroy(&h[i].trailers);
		grpc_slice_unref(h[i].details);
		grpc_call_unref(h[i].call);
	}
	free(h);
	grpc_slice_unref(mslice);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return failed ? SFTCA_ERR_RPC : 0;
}

/* --- rpc: requests from FIELD=VALUE, replies as FIELD=VALUE ------------------- */

/* Size of one element of a field's storage. */
static size_t field_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default: /* string, message: a pointer */
		return sizeof(void *);
	}
}

static ProtobufCMessage *message_new(const ProtobufCMessageDescriptor *d);

static long long parse_int(const char *v, const char *name)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(v, &end, 0);
	if (v[0] == '\0' || *end != '\0' || errno != 0)
		die("%s: not a number", name);
	return n;
}

/* Store VALUE for field f into the element at p. */
static void set_value(const ProtobufCFieldDescriptor *f, void *p, char *v)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
		*(int32_t *)p = (int32_t)parse_int(v, f->name);
		break;
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		*(uint32_t *)p = (uint32_t)parse_int(v, f->name);
		break;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		*(int64_t *)p = (int64_t)parse_int(v, f->name);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)p = strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, v);
		*(int *)p = ev ? ev->value : (int)parse_int(v, f->name);
		break;
	}
	case PROTOBUF_C_TYPE_STRING:
		*(char **)p = strdup(v);
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = p;
		if (v[0] == '@') {
			b->data = (uint8_t *)slurp(v + 1, &b->len);
		} else {
			b->data = (uint8_t *)strdup(v);
			b->len = strlen(v);
		}
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *m = message_new(f->descriptor);
		for (char *kv = v, *next; kv != NULL; kv = next) {
			char *eq = strchr(kv, '='), *comma = strchr(kv, ',');
			const ProtobufCFieldDescriptor *sf;
			if (comma)
				*comma = '\0';
			next = comma ? comma + 1 : NULL;
			if (eq == NULL || (comma && eq > comma))
				die("\"%s\" is not FIELD=VALUE", kv);
			*eq = '\0';
			if ((sf = protobuf_c_message_descriptor_get_field_by_name(f->descriptor, kv)) == NULL)
				die("no field \"%s\" in the nested message", kv);
			if (sf->label == PROTOBUF_C_LABEL_REPEATED || sf->type == PROTOBUF_C_TYPE_MESSAGE)
				die("nested field \"%s\" must be a scalar", kv);
			set_value(sf, (char *)m + sf->offset, eq + 1);
		}
		*(ProtobufCMessage **)p = m;
		break;
	}
	default:
		die("field %s: type not supported", f->name);
	}
}

static ProtobufCMessage *message_new(const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = calloc(1, d->sizeof_message);

	if (m == NULL)
		die("%s", "out of memory");
	d->message_init(m);
	return m;
}

/* Apply one FIELD=VALUE to m; a repeated field gets one more element. */
static void set_field(ProtobufCMessage *m, char *arg)
{
	char *eq = strchr(arg, '=');
	const ProtobufCFieldDescriptor *f;

	if (eq == NULL)
		die("\"%s\" is not FIELD=VALUE", arg);
	*eq = '\0';
	if ((f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, arg)) == NULL)
		die("no field \"%s\" in this request", arg);
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		die("field %s: oneof not supported", arg);
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t *n = (size_t *)((char *)m + f->quantifier_offset);
		char **arr = (char **)((char *)m + f->offset);
		size_t sz = field_size(f);
		if ((*arr = realloc(*arr, (*n + 1) * sz)) == NULL)
			die("%s", "out of memory");
		memset(*arr + *n * sz, 0, sz);
		set_value(f, *arr + *n * sz, eq + 1);
		(*n)++;
	} else {
		if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
			*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
		set_value(f, (char *)m + f->offset, eq + 1);
	}
}

static void print_string(const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			fputs("\\n", stdout);
		else if ((unsigned char)*s < 0x20 || *s == 0x7f)
			printf("\\x%02x", (unsigned char)*s);
		else
			putchar(*s);
	}
}

static void print_message(const ProtobufCMessage *m, const char *prefix);

static void print_value(const ProtobufCFieldDescriptor *f, const void *p, const char *name)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
		printf("%s=%d\n", name, *(const int32_t *)p);
		return;
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		printf("%s=%u\n", name, *(const uint32_t *)p);
		return;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
		printf("%s=%lld\n", name, (long long)*(const int64_t *)p);
		return;
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		printf("%s=%llu\n", name, (unsigned long long)*(const uint64_t *)p);
		return;
	case PROTOBUF_C_TYPE_BOOL:
		printf("%s=%s\n", name, *(const protobuf_c_boolean *)p ? "true" : "false");
		return;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
		if (ev)
			printf("%s=%s\n", name, ev->name);
		else
			printf("%s=%d\n", name, *(const int *)p);
		return;
	}
	case PROTOBUF_C_TYPE_STRING:
		printf("%s=", name);
		print_string(*(char *const *)p ? *(char *const *)p : "");
		putchar('\n');
		return;
	case PROTOBUF_C_TYPE_BYTES:
		printf("%s=<%zu bytes>\n", name, ((const ProtobufCBinaryData *)p)->len);
		return;
	case PROTOBUF_C_TYPE_MESSAGE:
		if (*(ProtobufCMessage *const *)p)
			print_message(*(ProtobufCMessage *const *)p, name);
		return;
	default:
		printf("%s=?\n", name);
	}
}

static void print_message(const ProtobufCMessage *m, const char *prefix)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	char name[512];

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			const char *arr = *(char *const *)base;
			for (size_t k = 0; k < n; k++) {
				snprintf(name, sizeof(name), "%s%s%s.%zu", prefix, *prefix ? "." : "",
					 f->name, k);
				print_value(f, arr + k * field_size(f), name);
			}
		} else {
			snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", f->name);
			print_value(f, base, name);
		}
	}
}

/* The path and descriptors of METHOD. */
static void find_method(const char *method, char *path, size_t len,
			const ProtobufCMessageDescriptor **in, const ProtobufCMessageDescriptor **out)
{
	static const ProtobufCServiceDescriptor *const services[] = {
		&sftca__v1__signer__descriptor, &grpc__health__v1__health__descriptor,
	};

	for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++) {
		const ProtobufCServiceDescriptor *sd = services[s];
		const char *shortname = strrchr(sd->name, '.') + 1; /* "Health" */
		for (unsigned i = 0; i < sd->n_methods; i++) {
			char qualified[128];
			snprintf(path, len, "/%s/%s", sd->name, sd->methods[i].name);
			snprintf(qualified, sizeof(qualified), "%s/%s", shortname, sd->methods[i].name);
			if (strcmp(method, path) == 0 || strcmp(method, qualified) == 0 ||
			    (s == 0 && strcmp(method, sd->methods[i].name) == 0)) {
				*in = sd->methods[i].input;
				*out = sd->methods[i].output;
				return;
			}
		}
	}
	die("unknown method %s", method);
}

static int probe_rpc(struct rpc_client *c, const char *path, const ProtobufCMessage *q,
		     const ProtobufCMessageDescriptor *out, int timeout)
{
	ProtobufCMessage *resp = NULL;
	struct rpc_result res;
	int r = rpc_call(c, path, q, out, timeout, &resp, &res);

	print_status(&res);
	if (r == 0)
		print_message(resp, "");
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

/* --- main ---------------------------------------------------------------------- */

static void wait_until(long long at_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (at_ms > now) {
		ts.tv_sec = (time_t)((at_ms - now) / 1000);
		ts.tv_nsec = (long)((at_ms - now) % 1000) * 1000000;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "signer", required_argument, NULL, 's' }, { "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' }, { "tls-ca", required_argument, NULL, 'a' },
		{ "timeout", required_argument, NULL, 't' }, { "repeat", required_argument, NULL, 'n' },
		{ "at", required_argument, NULL, 'A' },      { NULL, 0, NULL, 0 },
	};
	const char *cert = NULL, *key = NULL, *ca = NULL, *cmd;
	struct rpc_client_opts o = { 0 };
	struct rpc_client *c;
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	ProtobufCMessage *rpcreq = NULL;
	const ProtobufCMessageDescriptor *rpc_in = NULL, *rpc_out = NULL;
	Sftca__V1__IssueBatchRequest *issuereq = NULL;
	char path[256];
	long long at = 0, repeat = 1;
	int ch, timeout = 10000, failed = 0, nargs;

	log_init("rpcprobe", LOG_STYLE_CLI, LOG_LVL_WARN);
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': o.target = optarg; break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break; /* tests only: the key's mode is not checked */
		case 'a': ca = optarg; break;
		case 't': timeout = (int)parse_int(optarg, "--timeout") * 1000; break;
		case 'n': repeat = parse_int(optarg, "--repeat"); break;
		case 'A': at = parse_int(optarg, "--at"); break;
		default: return 2;
		}
	}
	if (o.target == NULL || optind >= argc || repeat < 1)
		return 2;
	cmd = argv[optind];
	nargs = argc - optind - 1;
	/* Build the request once, before connecting. */
	if (strcmp(cmd, "health") == 0 && nargs == 0) {
	} else if (strcmp(cmd, "call") == 0 && (nargs == 1 || nargs == 2)) {
		if (nargs == 2 && argv[optind + 2][0] == '@')
			raw = (unsigned char *)slurp(argv[optind + 2] + 1, &rawlen);
		else if (nargs == 2)
			raw = unhex(argv[optind + 2], &rawlen);
	} else if (strcmp(cmd, "hold") == 0 && nargs == 2) {
		if (parse_int(argv[optind + 2], "N") < 1)
			return 2;
	} else if (strcmp(cmd, "issue") == 0 && nargs >= 2) {
		issuereq = issue_request(argv[optind + 1], nargs - 2, argv + optind + 3);
	} else if (strcmp(cmd, "rpc") == 0 && nargs >= 1) {
		find_method(argv[optind + 1], path, sizeof(path), &rpc_in, &rpc_out);
		rpcreq = message_new(rpc_in);
		for (int i = optind + 2; i < argc; i++)
			set_field(rpcreq, argv[i]);
	} else {
		return 2;
	}
	o.cert_pem = cert ? slurp(cert, NULL) : NULL;
	o.key_pem = key ? slurp(key, NULL) : NULL;
	o.ca_pem = ca ? slurp(ca, NULL) : NULL;
	grpc_init();
	if ((c = rpc_client_new(&o)) == NULL)
		return 2;
	if (at) {
		probe_health(c, timeout, 1);
		wait_until(at);
	}
	for (long long i = 0; i < repeat; i++) {
		int r;
		if (strcmp(cmd, "health") == 0)
			r = probe_health(c, timeout, 0);
		else if (strcmp(cmd, "hold") == 0)
			r = probe_hold(c, argv[optind + 1], parse_int(argv[optind + 2], "N"), timeout);
		else if (strcmp(cmd, "call") == 0)
			r = probe_raw(c, argv[optind + 1], raw ? raw : (const unsigned char *)"", rawlen,
				      timeout);
		else if (issuereq)
			r = probe_issue(c, issuereq, argv[optind + 2], timeout);
		else
			r = probe_rpc(c, path, rpcreq, rpc_out, timeout);
		failed |= r != 0;
		fflush(stdout);
	}
	rpc_client_free(c);
	grpc_shutdown_blocking();
	if (issuereq)
		issue_request_free(issuereq);
	if (rpcreq)
		protobuf_c_message_free_unpacked(rpcreq, NULL);
	free(raw);
	free((char *)o.cert_pem);
	free((char *)o.key_pem);
	free((char *)o.ca_pem);
	return failed ? 1 : 0;
}
