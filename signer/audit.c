#include "audit.h"

#include "atomicfile.h"
#include "clock.h"
#include "errors.h"
#include "failpoint.h"
#include "fileio.h"
#include "log.h"
#include "x509util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define DENY_SLOTS 256
/* Start-up reads the log backwards from its end, at most this far. */
#define TAIL_MAX (1u << 20)

/* Denials of one method to one identity within the current interval: the
 * first is written, the rest only counted (issue 10: a flood of denied
 * calls must not stall the audit writes that matter). */
struct deny {
	char identity[160], method[128], peer[128], reason[160];
	int64_t since_ms; /* 0: free */
	unsigned long long held;
};

struct audit {
	pthread_mutex_t mu;
	int fd;
	char dir[4096];
	unsigned long long seq;
	char prev[65];
	off_t size;                /* of audit.log */
	unsigned long rotations;   /* highest N of audit.log.N */
	size_t rotate_bytes;
	unsigned coalesce_s;
	struct deny deny[DENY_SLOTS];
	char instance[40];         /* the signer instance (ledger_instance), in every record */
};

static int write_record(struct audit *a, const char *event, const char *identity,
			const char *ca, const char *result, json_t *detail);

/* The highest N of DIR/audit.log.N (0 when the log never rotated). */
static unsigned long last_rotation(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned long n = 0;

	while (d && (e = readdir(d)) != NULL) {
		char *end;
		unsigned long v;
		if (strncmp(e->d_name, "audit.log.", 10) != 0 || e->d_name[10] < '1' ||
		    e->d_name[10] > '9')
			continue;
		v = strtoul(e->d_name + 10, &end, 10);
		if (*end == '\0' && v > n)
			n = v;
	}
	if (d)
		closedir(d);
	return n;
}

char **audit_rotated_set(const char *log_path, size_t *n)
{
	const char *slash = strrchr(log_path, '/'), *base = slash ? slash + 1 : log_path;
	char dir[4096], **v;
	unsigned long last;
	size_t k = 0;

	*n = 0;
	if (strcmp(base, "audit.log") != 0)
		return NULL;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - log_path) : 1,
		 slash ? log_path : ".");
	if ((last = last_rotation(dir)) == 0 || (v = calloc(last + 1, sizeof(*v))) == NULL)
		return NULL;
	for (unsigned long i = 1; i <= last; i++) {
		char p[4300];
		snprintf(p, sizeof(p), "%s.%lu", log_path, i);
		if (access(p, F_OK) == 0 && (v[k] = strdup(p)) != NULL)
			k++;
	}
	if ((v[k] = strdup(log_path)) != NULL)
		k++;
	*n = k;
	return v;
}

/* Continue the chain from the last line of path, reading only its end. */
static int load_tail_of(struct audit *a, const char *path, off_t *size)
{
	struct stat st;
	char *buf = NULL, *start;
	size_t n;
	json_t *j = NULL;
	int fd, r = SFTCA_ERR_VERIFY;

	*size = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : SFTCA_ERR_IO;
	if (fstat(fd, &st) != 0 || (*size = st.st_size) == 0) {
		r = st.st_size == 0 ? 0 : SFTCA_ERR_IO;
		goto out;
	}
	n = st.st_size > (off_t)TAIL_MAX ? TAIL_MAX : (size_t)st.st_size;
	if ((buf = malloc(n + 1)) == NULL) {
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	if (pread(fd, buf, n, st.st_size - (off_t)n) != (ssize_t)n) {
		log_error("%s: %s", path, strerror(errno));
		r = SFTCA_ERR_IO;
		goto out;
	}
	if (buf[n - 1] != '\n') {
		log_error("%s ends in a partial line: the audit log was damaged; check it with "
			  "sftca-signer verify-audit",
			  path);
		goto out;
	}
	buf[n - 1] = '\0';
	start = memrchr(buf, '\n', n - 1);
	if (start == NULL && n < (size_t)st.st_size) {
		log_error("%s: the last line is longer than %u bytes", path, TAIL_MAX);
		goto out;
	}
	start = start ? start + 1 : buf;
	if ((j = json_loads(start, 0, NULL)) == NULL || !json_is_integer(json_object_get(j, "seq"))) {
		log_error("%s: the last line is not an audit record", path);
		goto out;
	}
	a->seq = (unsigned long long)json_integer_value(json_object_get(j, "seq"));
	sha256_hex(start, strlen(start), a->prev);
	r = 0;
out:
	json_decref(j);
	free(buf);
	close(fd);
	return r;
}

/* Where the chain goes on: the end of audit.log or, when it is empty or
 * missing (a stop right after a rotation), of the last rotated file. */
static int load_tail(struct audit *a, const char *path)
{
	char rotated[4300];
	off_t ignored;
	int r;

	snprintf(a->prev, sizeof(a->prev), ZERO_HASH);
	a->seq = 0;
	a->rotations = last_rotation(a->dir);
	if ((r = load_tail_of(a, path, &a->size)) != 0 || a->size > 0 || a->rotations == 0)
		return r;
	snprintf(rotated, sizeof(rotated), "%s.%lu", path, a->rotations);
	return load_tail_of(a, rotated, &ignored);
}

int audit_open(const char *dir, struct audit **out)
{
	struct audit *a = calloc(1, sizeof(*a));
	char path[4200];
	int r;

	*out = NULL;
	if (a == NULL)
		return SFTCA_ERR_NOMEM;
	snprintf(a->dir, sizeof(a->dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	a->rotate_bytes = AUDIT_ROTATE_DEFAULT;
	a->coalesce_s = AUDIT_COALESCE_DEFAULT;
	pthread_mutex_init(&a->mu, NULL);
	if ((r = load_tail(a, path)) != 0) {
		free(a);
		return r;
	}
	if ((a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		log_error("audit log %s: %s", path, strerror(errno));
		free(a);
		return SFTCA_ERR_IO;
	}
	*out = a;
	return 0;
}

void audit_set_limits(struct audit *a, size_t rotate_bytes, unsigned coalesce_seconds)
{
	a->rotate_bytes = rotate_bytes;
	a->coalesce_s = coalesce_seconds;
}

/* Write the count of denials held back in slot d, and free it. */
static void deny_flush(struct audit *a, struct deny *d, int64_t now_ms)
{
	if (d->held > 0) {
		write_record(a, "refused.repeat", d->identity, NULL, "refused",
			     json_pack("{s:o, s:I, s:I, s:o, s:o}", "method", audit_text(d->method),
				       "count", (json_int_t)d->held, "seconds",
				       (json_int_t)((now_ms - d->since_ms) / 1000), "last_peer",
				       audit_text(d->peer), "last_reason", audit_text(d->reason)));
	}
	memset(d, 0, sizeof(*d));
}

static void deny_flush_expired(struct audit *a, int64_t now_ms, int all)
{
	for (size_t i = 0; i < DENY_SLOTS; i++)
		if (a->deny[i].since_ms &&
		    (all || now_ms - a->deny[i].since_ms >= (int64_t)a->coalesce_s * 1000))
			deny_flush(a, &a->deny[i], now_ms);
}

void audit_set_instance(struct audit *a, const char *instance)
{
	pthread_mutex_lock(&a->mu);
	snprintf(a->instance, sizeof(a->instance), "%s", instance);
	pthread_mutex_unlock(&a->mu);
}

void audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	deny_flush_expired(a, clock_monotonic_ms(), 1);
	pthread_mutex_unlock(&a->mu);
	close(a->fd);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

static int write_head(struct audit *a)
{
	char text[128];
	struct af_file f = { "audit.head", text, 0, 0600 };

	f.len = (size_t)snprintf(text, sizeof(text), "%llu %s\n", a->seq, a->prev);
	return af_write(a->dir, &f, NULL);
}

void audit_last(struct audit *a, unsigned long long *seq, char prev[65])
{
	pthread_mutex_lock(&a->mu);
	*seq = a->seq;
	memcpy(prev, a->prev, 65);
	pthread_mutex_unlock(&a->mu);
}

/* A checkpoint the audit key signed: record seq had hash. */
struct checkpoint {
	unsigned long long seq;
	char hash[65];
};

/* path holds "SEQ SHA256 UNIXTIME\nsig BASE64\n"; the signature, by key,
 * is over the first line. */
static int read_checkpoint(const char *path, EVP_PKEY *key, struct checkpoint *cp, char *why,
			   size_t whylen)
{
	char *buf = NULL, *nl, *b64;
	unsigned char der[600];
	size_t len, b64len;
	EVP_MD_CTX *md = NULL;
	int dlen, ok = 0, r = SFTCA_ERR_VERIFY;

	if (file_read_all(path, 4096, &buf, &len) != 0) {
		snprintf(why, whylen, "%s cannot be read: no signed checkpoint to check against",
			 path);
		return r;
	}
	if ((nl = strchr(buf, '\n')) == NULL || strncmp(nl + 1, "sig ", 4) != 0 ||
	    sscanf(buf, "%llu %64s", &cp->seq, cp->hash) != 2) {
		snprintf(why, whylen, "%s is not a signed audit checkpoint", path);
		goto out;
	}
	b64 = nl + 5;
	b64len = strcspn(b64, "\n");
	if (b64len == 0 || b64len > 4 * (sizeof(der) / 3) ||
	    (dlen = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)b64len)) < 0) {
		snprintf(why, whylen, "%s: the signature line is not base64", path);
		goto out;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	for (size_t i = b64len; i > 0 && b64[i - 1] == '='; i--)
		dlen--;
	if ((md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestVerify(md, der, (size_t)dlen, (const unsigned char *)buf,
			     (size_t)(nl - buf)) == 1)
		ok = 1;
	ERR_clear_error();
	if (!ok) {
		snprintf(why, whylen,
			 "%s: the signature does not verify with the audit key: the checkpoint was "
			 "rewritten without the token",
			 path);
		goto out;
	}
	r = 0;
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return r;
}

json_t *audit_text(const char *s)
{
	json_t *j;
	char *esc, *o;

	if (s == NULL)
		return NULL;
	if ((j = json_string(s)) != NULL)
		return j;
	if ((esc = malloc(4 * strlen(s) + 1)) == NULL)
		return NULL;
	for (o = esc; *s; s++)
		if ((unsigned char)*s < 0x80)
			*o++ = *s;
		else
			o += sprintf(o, "\\x%02x", (unsigned char)*s);
	*o = '\0';
	j = json_string(esc);
	free(esc);
	return j;
}

/* Append one line and fdatasync it. A failure takes back whatever part of
 * the line reached the file (a fragment would break the chain, and a whole
 * line not known to be on disk would be a record the chain goes on
 * without), so the next record continues from the last good one. */
/* audit.log becomes audit.log.N+1 and a new audit.log is started; the
 * chain simply goes on in it (verify-audit checks the set). */
static int rotate(struct audit *a)
{
	char path[4200], to[4300];
	int fd, dfd;

	snprintf(path, sizeof(path), "%s/audit.log", a->dir);
	snprintf(to, sizeof(to), "%s.%lu", path, a->rotations + 1);
	if (access(to, F_OK) == 0 || rename(path, to) != 0) {
		log_error("audit log: cannot rotate %s to %s: %s", path, to,
			  errno ? strerror(errno) : "it exists");
		return SFTCA_ERR_IO;
	}
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		log_error("audit log %s: %s", path, strerror(errno));
		return SFTCA_ERR_IO;
	}
	if ((dfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(dfd);
		close(dfd);
	}
	close(a->fd);
	a->fd = fd;
	a->size = 0;
	a->rotations++;
	log_info("audit log rotated: %s (records up to %llu), a new %s goes on with the chain", to,
		 a->seq, path);
	return 0;
}

static int append_line(struct audit *a, const char *line, size_t len)
{
	off_t end;
	int e;

	if (a->size > 0 && (size_t)a->size + len + 1 > a->rotate_bytes && rotate(a) != 0)
		return SFTCA_ERR_IO;
	end = lseek(a->fd, 0, SEEK_END);

	errno = 0;
	/* The failpoint stands for a disk that fills up in mid-line. */
	if (end >= 0 && write_all(a->fd, line, len / 2) == 0 && failpoint("audit.write") == 0 &&
	    write_all(a->fd, line + len / 2, len - len / 2) == 0 && write_all(a->fd, "\n", 1) == 0 &&
	    fdatasync(a->fd) == 0) {
		a->size = end + (off_t)len + 1;
		return 0;
	}
	e = errno ? errno : EIO;
	if (end >= 0 && (ftruncate(a->fd, end) != 0 || fdatasync(a->fd) != 0))
		log_error("audit log: taking back a failed record: %s; check it with sftca-signer "
			  "verify-audit",
			  strerror(errno));
	log_error("audit log write failed: %s", strerror(e));
	return SFTCA_ERR_IO;
}

int audit_log(struct audit *a, const char *event, const char *identity, const char *ca,
	      const char *result, json_t *detail)
{
	int r;

	if (a == NULL) {
		json_decref(detail);
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	deny_flush_expired(a, clock_monotonic_ms(), 0);
	r = write_record(a, event, identity, ca, result, detail);
	pthread_mutex_unlock(&a->mu);
	return r;
}

int audit_denied(struct audit *a, const char *identity, const char *method, const char *peer,
		 const char *reason)
{
	int64_t now = clock_monotonic_ms();
	struct deny *d = NULL, *oldest = NULL;
	int first = 1;

	if (a == NULL)
		return 1;
	pthread_mutex_lock(&a->mu);
	deny_flush_expired(a, now, 0);
	for (size_t i = 0; a->coalesce_s && i < DENY_SLOTS; i++) {
		struct deny *x = &a->deny[i];
		if (x->since_ms == 0) {
			if (d == NULL)
				d = x;
			continue;
		}
		if (strcmp(x->identity, identity) == 0 && strcmp(x->method, method) == 0) {
			d = x;
			first = 0;
			break;
		}
		if (oldest == NULL || x->since_ms < oldest->since_ms)
			oldest = x;
	}
	if (a->coalesce_s && d == NULL) {
		/* Every slot busy: the oldest interval ends early. */
		deny_flush(a, oldest, now);
		d = oldest;
	}
	if (d && first) {
		snprintf(d->identity, sizeof(d->identity), "%s", identity);
		snprintf(d->method, sizeof(d->method), "%s", method);
		d->since_ms = now;
	}
	if (d) {
		snprintf(d->peer, sizeof(d->peer), "%s", peer);
		snprintf(d->reason, sizeof(d->reason), "%s", reason);
		if (!first)
			d->held++;
	}
	if (first)
		write_record(a, "refused", identity, NULL, "refused",
			     json_pack("{s:o, s:o, s:o}", "method", audit_text(method), "peer",
				       audit_text(peer), "reason", audit_text(reason)));
	pthread_mutex_unlock(&a->mu);
	return first;
}

/* One record, under a->mu. */
static int write_record(struct audit *a, const char *event, const char *identity,
			const char *ca, const char *result, json_t *detail)
{
	struct timespec ts;
	struct tm tm;
	char stamp[40], *line = NULL;
	json_t *j;
	int r = SFTCA_ERR_NOMEM;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + strlen(stamp), sizeof(stamp) - strlen(stamp), ".%03ldZ",
		 ts.tv_nsec / 1000000);
	j = json_pack("{s:I, s:s, s:s, s:o, s:o?, s:s, s:o?, s:s*, s:s}", "seq",
		      (json_int_t)(a->seq + 1), "ts", stamp, "event", event, "identity",
		      audit_text(identity ? identity : "-"), "ca", audit_text(ca), "result", result,
		      "detail", detail, "instance", a->instance[0] ? a->instance : NULL, "prev",
		      a->prev);
	if (j == NULL || (line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
		log_error("audit log: no memory for a %s record", event);
		goto out;
	}
	if ((r = append_line(a, line, strlen(line))) != 0)
		goto out;
	a->seq++;
	sha256_hex(line, strlen(line), a->prev);
	r = write_head(a);
out:
	free(line);
	json_decref(j);
	return r;
}

/* The head file names the last record (sequence and hash) the signer
 * wrote; only it reveals records removed from, or added to, the end. */
static int check_head(const char *head_path, unsigned long long seq, const char *prev, char *why,
		      size_t whylen)
{
	unsigned long long hseq = 0;
	char hhash[65] = "", *buf = NULL;
	size_t len;
	int r = SFTCA_ERR_VERIFY;

	if (file_read_all(head_path, 4096, &buf, &len) != 0) {
		if (seq == 0)
			return 0; /* nothing written, nothing to lose */
		snprintf(why, whylen, "%s cannot be read, so records removed from the end would go "
			 "unnoticed", head_path);
	} else if (sscanf(buf, "%llu %64s", &hseq, hhash) != 2) {
		snprintf(why, whylen, "%s is not an audit head (\"SEQ SHA256\")", head_path);
	} else if (hseq > seq) {
		snprintf(why, whylen,
			 "the log ends at record %llu but %s says %llu: records were removed from "
			 "the end", seq, head_path, hseq);
	} else if (hseq < seq) {
		snprintf(why, whylen,
			 "the log ends at record %llu but %s says %llu: records were appended "
			 "behind the signer's back (or it stopped between a record and its head)",
			 seq, head_path, hseq);
	} else if (strcmp(hhash, prev) != 0) {
		snprintf(why, whylen, "line %llu: does not match %s: the last record was edited",
			 seq, head_path);
	} else {
		r = 0;
	}
	free(buf);
	return r;
}

/* Records of one file, continuing the chain in *seq and prev. */
static int verify_one(const char *path, int many, unsigned long long *seq, char prev[65],
		      const struct checkpoint *cp, char *why, size_t whylen)
{
	char *buf = NULL, *p, *nl, where[4300] = "";
	size_t len;
	int r;

	if ((r = file_read_all(path, 1ul << 30, &buf, &len)) != 0) {
		snprintf(why, whylen, "%s cannot be read", path);
		return r;
	}
	if (many)
		snprintf(where, sizeof(where), " (in %s)", path);
	/* By length, not to the first NUL: bytes behind one (a file damaged
	 * by a crash, or text appended after it) are checked too. */
	for (p = buf; p < buf + len; p = nl + 1) {
		json_t *j;
		const char *jprev;

		if ((nl = memchr(p, '\n', (size_t)(buf + len - p))) == NULL) {
			snprintf(why, whylen, "line %llu%s: partial line at the end", *seq + 1, where);
			r = SFTCA_ERR_VERIFY;
			goto out;
		}
		*nl = '\0';
		if (memchr(p, '\0', (size_t)(nl - p)) != NULL) {
			snprintf(why, whylen, "line %llu%s: holds a NUL byte (damaged or edited)",
				 *seq + 1, where);
			r = SFTCA_ERR_VERIFY;
			goto out;
		}
		j = json_loads(p, 0, NULL);
		jprev = j ? json_string_value(json_object_get(j, "prev")) : NULL;
		if (j == NULL || jprev == NULL ||
		    json_integer_value(json_object_get(j, "seq")) != (json_int_t)(*seq + 1)) {
			snprintf(why, whylen, "line %llu%s: not a record in sequence", *seq + 1,
				 where);
			json_decref(j);
			r = SFTCA_ERR_VERIFY;
			goto out;
		}
		if (strcmp(jprev, prev) != 0) {
			snprintf(why, whylen,
				 "line %llu%s: chain broken (a line before it was edited, removed or "
				 "reordered%s)",
				 *seq + 1, where, many ? ", or a file of the set is missing" : "");
			json_decref(j);
			r = SFTCA_ERR_VERIFY;
			goto out;
		}
		json_decref(j);
		sha256_hex(p, strlen(p), prev);
		(*seq)++;
		if (cp && cp->seq == *seq && strcmp(cp->hash, prev) != 0) {
			snprintf(why, whylen,
				 "line %llu%s: differs from the record the audit key signed: the log "
				 "was rewritten",
				 *seq, where);
			r = SFTCA_ERR_VERIFY;
			goto out;
		}
	}
	r = 0;
out:
	free(buf);
	return r;
}

int audit_verify_set(const char *const *paths, size_t n, const char *head_path,
		     unsigned long *lines, char *why, size_t whylen)
{
	return audit_verify_signed(paths, n, head_path, NULL, lines, why, whylen);
}

int audit_verify_signed(const char *const *paths, size_t n, const char *head_path,
			EVP_PKEY *key, unsigned long *lines, char *why, size_t whylen)
{
	char prev[65] = ZERO_HASH, head_default[4200], anchor[4200];
	const char *log_path = paths[n - 1], *slash = strrchr(log_path, '/');
	int dirlen = slash ? (int)(slash - log_path) : 0;
	struct checkpoint cp;
	unsigned long long seq = 0;
	int r;

	*lines = 0;
	why[0] = '\0';
	snprintf(anchor, sizeof(anchor), "%.*s%saudit.anchor", dirlen, log_path, slash ? "/" : "");
	if (key && (r = read_checkpoint(anchor, key, &cp, why, whylen)) != 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if ((r = verify_one(paths[i], n > 1, &seq, prev, key ? &cp : NULL, why, whylen)) != 0)
			return r;
	if (key && cp.seq > seq) {
		snprintf(why, whylen,
			 "the log ends at record %llu but the audit key signed record %llu: records "
			 "were removed",
			 seq, cp.seq);
		return SFTCA_ERR_VERIFY;
	}
	*lines = (unsigned long)seq;
	if (head_path == NULL) {
		snprintf(head_default, sizeof(head_default), "%.*s%saudit.head", dirlen, log_path,
			 slash ? "/" : "");
		head_path = head_default;
	}
	return check_head(head_path, seq, prev, why, whylen);
}

int audit_verify_file(const char *log_path, const char *head_path, unsigned long *lines,
		      char *why, size_t whylen)
{
	return audit_verify_set(&log_path, 1, head_path, lines, why, whylen);
}
