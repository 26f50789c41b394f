/* What a device's shell prints (client/devparse.c, network input): arbitrary
 * bytes as the FTD's interactive shell output, arriving in reads whose sizes
 * byte 0 picks, then the command output between the markers, parsed as
 * sha256sum lines the way push does. Checks: the escape filter keeps neither
 * CR nor ESC and gives the same text however the bytes are split, the
 * buffer stays terminated and bounded, the marker search finds the first
 * marker as soon as it is complete (never misses one at a read boundary),
 * the output is bounded, and every digest is "" or 64 lowercase hex digits
 * that the input holds on a line with its file name. */
#include "fuzz_common.h"
#include "fuzz_sums.h"

#include "devparse.h"

#define NONCE "0123456789abcdef"
#define BEGIN "__SFTCA_" NONCE "_1_B__\n"
#define END "__SFTCA_" NONCE "_1_E_"

static const char *const names[] = { "ca_bundle.pem", "peer.crt", "peer.key" };
static const char *const prompts[] = { "#", "$", "assword:", ">" };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_devparse");
	return 0;
}

static void check_buf(const struct shellbuf *b)
{
	FUZZ_CHECK(b->len <= SHELLBUF_MAX);
	if (b->buf == NULL) {
		FUZZ_CHECK(b->len == 0);
		return;
	}
	FUZZ_CHECK(b->len < b->cap);
	FUZZ_CHECK(b->buf[b->len] == '\0');
	FUZZ_CHECK(memchr(b->buf, '\r', b->len) == NULL);
	FUZZ_CHECK(memchr(b->buf, 0x1b, b->len) == NULL);
	/* A NUL would end every search before what follows it. */
	FUZZ_CHECK(memchr(b->buf, 0, b->len) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shellbuf whole = { 0 }, parts = { 0 };
	char out[2048], sums[3][65], *m = NULL;
	struct shell_stat st[3];
	const char *in;
	size_t step, off, n;
	int status, found = 0;

	if (size < 1)
		return 0;
	/* Reads of 1 to 64 bytes, or everything at once. */
	step = data[0] < 192 ? (size_t)(data[0] % 64) + 1 : size;
	in = (const char *)data + 1;
	n = size - 1;

	shellbuf_append(&whole, in, n);
	check_buf(&whole);
	for (off = 0; off < n; off += step) {
		size_t k = n - off < step ? n - off : step;
		shellbuf_append(&parts, in + off, k);
		check_buf(&parts);
		/* As ftd_expect searches: after every read. */
		if ((m = shellbuf_find_marker(&parts, END)) != NULL) {
			/* The first marker there is, not a later one. */
			FUZZ_CHECK(m == strstr(parts.buf, END));
			if (shell_status_complete(m + strlen(END))) {
				found = 1;
				break;
			}
			parts.scanned = (size_t)(m - parts.buf);
		} else if (parts.buf != NULL) {
			FUZZ_CHECK(strstr(parts.buf, END) == NULL);
		}
		int p = shellbuf_prompt(&parts, prompts, 4);
		FUZZ_CHECK(p >= -1 && p < 4);
		if (p >= 0) {
			size_t e = parts.len, pl = strlen(prompts[p]);
			while (e > 0 && parts.buf[e - 1] == ' ')
				e--;
			FUZZ_CHECK(e >= pl && memcmp(parts.buf + e - pl, prompts[p], pl) == 0);
		}
	}
	if (!found) {
		/* Split or not, the filter keeps the same text. */
		FUZZ_CHECK(parts.len == whole.len);
		FUZZ_CHECK(parts.len == 0 || memcmp(parts.buf, whole.buf, parts.len) == 0);
	}
	if (found) {
		if (shell_extract(parts.buf, BEGIN, END, out, sizeof(out), &status) == 0) {
			FUZZ_CHECK(fuzz_terminated(out, sizeof(out)));
			FUZZ_CHECK(strlen(out) < sizeof(out));
			/* The output lies between the markers of the buffer. */
			FUZZ_CHECK(strstr(parts.buf, out) != NULL);
			shell_parse_sums(out, names, 3, sums);
			fuzz_check_sums(out, names, 3, sums);
			shell_parse_stats(out, names, 3, st);
			fuzz_check_stats(out, names, 3, st);
		}
	}
	/* The parser alone on the raw bytes, as far as they are text. */
	if (whole.buf != NULL) {
		shell_parse_sums(whole.buf, names, 3, sums);
		fuzz_check_sums(whole.buf, names, 3, sums);
		shell_parse_stats(whole.buf, names, 3, st);
		fuzz_check_stats(whole.buf, names, 3, st);
	}
	shellbuf_reset(&whole);
	FUZZ_CHECK(whole.buf == NULL || (whole.len == 0 && whole.buf[0] == '\0'));
	shellbuf_free(&whole);
	shellbuf_free(&parts);
	FUZZ_CHECK(parts.buf == NULL && whole.buf == NULL);
	return 0;
}
