/* `sftca diagnose`: the log scanner (client/logscan.c) and the plain/gzip
 * reader in front of it (client/logread.c).
 *
 * Input: byte 0 picks where the rest is split in two feeds (0 = all in the
 * second, 255 = all in the first), so lines are cut across feeds at every
 * place. The same bytes then go through logread_fd(), which has no
 * in-memory entry point: they are written to a memfd (no file system), so
 * gzip inputs (1f 8b ...) exercise inflate, concatenated members,
 * truncation and trailing garbage, and whatever comes out is scanned too.
 * Every finding must keep logscan.h's promises: bounded counts and text
 * that is valid UTF-8 without control characters. */
#include "fuzz_common.h"

#include "logread.h"
#include "logscan.h"

#include <sys/mman.h>
#include <unistd.h>

static int memfd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_logscan");
	if ((memfd = memfd_create("fuzz_logscan", MFD_CLOEXEC)) < 0) {
		perror("memfd_create");
		abort();
	}
	return 0;
}

/* What textclean.h promises for text shown to people: valid UTF-8 and no
 * C0 control, DEL or C1 control. Checked by decoding each code point and
 * testing its range, independently of textclean.c's table. */
static int clean_text(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	while (*s) {
		unsigned long cp, min;
		size_t n;

		if (*s < 0x80)
			n = 1, cp = *s, min = 0;
		else if ((*s & 0xe0) == 0xc0)
			n = 2, cp = *s & 0x1fu, min = 0x80;
		else if ((*s & 0xf0) == 0xe0)
			n = 3, cp = *s & 0x0fu, min = 0x800;
		else if ((*s & 0xf8) == 0xf0)
			n = 4, cp = *s & 0x07u, min = 0x10000;
		else
			return 0;
		for (size_t i = 1; i < n; i++) {
			if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
				return 0;
			cp = cp << 6 | (s[i] & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0; /* overlong, past Unicode, surrogate */
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return 0; /* C0, DEL, C1 */
		s += n;
	}
	return 1;
}

static void check_values(const struct logscan_values *vs)
{
	FUZZ_CHECK(vs->n <= LOGSCAN_MAX_VALUES);
	FUZZ_CHECK(vs->n == 0 || vs->v != NULL);
	for (size_t i = 0; i < vs->n; i++) {
		FUZZ_CHECK(vs->v[i].text != NULL && clean_text(vs->v[i].text));
		FUZZ_CHECK(vs->v[i].count >= 1);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(vs->v[i].text, vs->v[j].text) != 0);
	}
}

static void check_findings(const struct logscan *ls)
{
	size_t n = logscan_count(ls);

	FUZZ_CHECK(n <= LOGSCAN_MAX_FINDINGS);
	FUZZ_CHECK(logscan_long_lines(ls) <= logscan_lines(ls));
	FUZZ_CHECK(logscan_finding(ls, n) == NULL);
	for (size_t i = 0; i < n; i++) {
		const struct logscan_finding *f = logscan_finding(ls, i);
		const struct logscan_remedy *rem;

		FUZZ_CHECK(f != NULL && f->count >= 1);
		FUZZ_CHECK(fuzz_terminated(f->id, sizeof(f->id)) && f->id[0]);
		FUZZ_CHECK(fuzz_terminated(f->title, sizeof(f->title)) && clean_text(f->title));
		FUZZ_CHECK(fuzz_terminated(f->first, sizeof(f->first)) && clean_text(f->first));
		FUZZ_CHECK(fuzz_terminated(f->last, sizeof(f->last)) && clean_text(f->last));
		FUZZ_CHECK(f->kind != LOGSCAN_VERIFY_ERROR || f->code >= 0);
		check_values(&f->hosts);
		check_values(&f->peers);
		check_values(&f->issuers);
		check_values(&f->subjects);
		check_values(&f->ca_ids);
		check_values(&f->details);
		/* Kinds are distinct findings. */
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(logscan_finding(ls, j)->id, f->id) != 0);
		if ((rem = logscan_remedy(f)) != NULL) {
			FUZZ_CHECK(rem->why != NULL);
			for (size_t k = 0; rem->steps && rem->steps[k]; k++)
				FUZZ_CHECK(strlen(rem->steps[k]) > 0);
		}
	}
}

static int sink(void *arg, const char *buf, size_t len)
{
	return logscan_feed(arg, buf, len);
}

static void through_logread(const uint8_t *data, size_t size)
{
	struct logscan *ls = logscan_new();
	int gz = 0;

	FUZZ_CHECK(ls != NULL);
	FUZZ_CHECK(ftruncate(memfd, 0) == 0 && lseek(memfd, 0, SEEK_SET) == 0);
	for (size_t off = 0; off < size;) {
		ssize_t w = write(memfd, data + off, size - off);
		FUZZ_CHECK(w > 0);
		off += (size_t)w;
	}
	FUZZ_CHECK(lseek(memfd, 0, SEEK_SET) == 0);
	(void)logread_fd(memfd, "fuzz.log", sink, ls, &gz);
	FUZZ_CHECK(gz == (size >= 2 && data[0] == 0x1f && data[1] == 0x8b));
	FUZZ_CHECK(logscan_finish(ls) == 0);
	check_findings(ls);
	logscan_free(ls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct logscan *ls;
	size_t split;

	if (size == 0)
		return 0;
	split = (size_t)data[0] * (size - 1) / 255;
	data++, size--;
	FUZZ_CHECK((ls = logscan_new()) != NULL);
	FUZZ_CHECK(logscan_feed(ls, (const char *)data, split) == 0);
	FUZZ_CHECK(logscan_feed(ls, (const char *)data + split, size - split) == 0);
	FUZZ_CHECK(logscan_finish(ls) == 0);
	check_findings(ls);
	/* A second input into the same scanner: findings accumulate. */
	FUZZ_CHECK(logscan_feed(ls, (const char *)data, split) == 0);
	FUZZ_CHECK(logscan_finish(ls) == 0);
	check_findings(ls);
	logscan_free(ls);
	through_logread(data, size);
	return 0;
}
