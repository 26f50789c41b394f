#include "audit.h"

#include "atomicfile.h"
#include "errors.h"
#include "failpoint.h"
#include "fileio.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

struct audit {
	pthread_mutex_t mu;
	int fd;
	char dir[4096];
	unsigned long long seq;
	char prev[65];
};

static void sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)data, len, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Find the last complete line of the existing log to continue its chain. */
static int load_tail(struct audit *a, const char *path)
{
	char *buf = NULL, *start, *end;
	size_t len;
	json_t *j;
	int r;

	snprintf(a->prev, sizeof(a->prev), ZERO_HASH);
	a->seq = 0;
	if (access(path, F_OK) != 0)
		return 0; /* a new log */
	if ((r = file_read_all(path, 1ul << 30, &buf, &len)) != 0)
		return r;
	if (len == 0) {
		free(buf);
		return 0;
	}
	if (buf[len - 1] != '\n') {
		log_error("%s ends in a partial line: the audit log was damaged; check it with "
			  "sftca-signer verify-audit",
			  path);
		free(buf);
		return SFTCA_ERR_VERIFY;
	}
	end = buf + len - 1;
	*end = '\0';
	start = strrchr(buf, '\n');
	start = start ? start + 1 : buf;
	if ((j = json_loads(start, 0, NULL)) == NULL || !json_is_integer(json_object_get(j, "seq"))) {
		log_error("%s: the last line is not an audit record", path);
		json_decref(j);
		free(buf);
		return SFTCA_ERR_VERIFY;
	}
	a->seq = (unsigned long long)json_integer_value(json_object_get(j, "seq"));
	sha256_hex(start, strlen(start), a->prev);
	json_decref(j);
	free(buf);
	return 0;
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

void audit_close(struct audit *a)
{
	if (a == NULL)
		return;
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
static int append_line(struct audit *a, const char *line, size_t len)
{
	off_t end = lseek(a->fd, 0, SEEK_END);
	int e;

	errno = 0;
	/* The failpoint stands for a disk that fills up in mid-line. */
	if (end >= 0 && write_all(a->fd, line, len / 2) == 0 && failpoint("audit.write") == 0 &&
	    write_all(a->fd, line + len / 2, len - len / 2) == 0 && write_all(a->fd, "\n", 1) == 0 &&
	    fdatasync(a->fd) == 0)
		return 0;
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
	struct timespec ts;
	struct tm tm;
	char stamp[40], *line = NULL;
	json_t *j;
	int r = SFTCA_ERR_NOMEM;

	if (a == NULL) {
		json_decref(detail);
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + strlen(stamp), sizeof(stamp) - strlen(stamp), ".%03ldZ",
		 ts.tv_nsec / 1000000);
	pthread_mutex_lock(&a->mu);
	j = json_pack("{s:I, s:s, s:s, s:o, s:o?, s:s, s:o?, s:s}", "seq",
		      (json_int_t)(a->seq + 1), "ts", stamp, "event", event, "identity",
		      audit_text(identity ? identity : "-"), "ca", audit_text(ca), "result", result,
		      "detail", detail, "prev", a->prev);
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
	pthread_mutex_unlock(&a->mu);
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

int audit_verify_file(const char *log_path, const char *head_path, unsigned long *lines,
		      char *why, size_t whylen)
{
	char prev[65] = ZERO_HASH, head_default[4200], *buf = NULL, *p, *nl;
	unsigned long long seq = 0;
	size_t len;
	int r;

	*lines = 0;
	why[0] = '\0';
	if ((r = file_read_all(log_path, 1ul << 30, &buf, &len)) != 0) {
		snprintf(why, whylen, "%s cannot be read", log_path);
		return r;
	}
	for (p = buf; *p; p = nl + 1) {
		json_t *j;
		const char *jprev;

		if ((nl = strchr(p, '\n')) == NULL) {
			snprintf(why, whylen, "line %llu: partial line at the end", seq + 1);
			r = SFTCA_ERR_VERIFY;
			goto out;
		}
		*nl = '\0';
		j = json_loads(p, 0, NULL);
		jprev = j ? json_string_value(json_object_get(j, "prev")) : NULL;
		if (j == NULL || jprev == NULL ||
		    json_integer_value(json_object_get(j, "seq")) != (json_int_t)(seq + 1)) {
			snprintf(why, whylen, "line %llu: not a record in sequence", seq + 1);
			json_decref(j);
			r = SFTCA_ERR_VERIFY;
			goto out;
		}
		if (strcmp(jprev, prev) != 0) {
			snprintf(why, whylen,
				 "line %llu: chain broken (a line before it was edited, removed or "
				 "reordered)",
				 seq + 1);
			json_decref(j);
			r = SFTCA_ERR_VERIFY;
			goto out;
		}
		json_decref(j);
		sha256_hex(p, strlen(p), prev);
		seq++;
	}
	*lines = (unsigned long)seq;
	if (head_path == NULL) {
		const char *slash = strrchr(log_path, '/');
		snprintf(head_default, sizeof(head_default), "%.*s%saudit.head",
			 slash ? (int)(slash - log_path) : 0, log_path, slash ? "/" : "");
		head_path = head_default;
	}
	r = check_head(head_path, seq, prev, why, whylen);
out:
	free(buf);
	return r;
}
