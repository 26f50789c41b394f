/* What a direct device's exec channel prints (client/devconn.c direct_run,
 * network input): arbitrary bytes arriving in reads whose sizes byte 0
 * picks, gathered by shell_out_append into push's buffers, then read as push
 * reads them: sha256sum lines (shell_parse_sums), the restart-pending line
 * and the temporary files' sums (strstr), and the failure message quoting
 * the output (text_escape), the UUID and Model lines of show version and an identity file. Checks: the buffer stays terminated and bounded
 * and holds the device's first bytes as they came, whatever the reads'
 * sizes; every digest is "" or 64 lowercase hex digits the output holds on a
 * line with its file name; the message has no control character left. */
#include "fuzz_common.h"
#include "fuzz_sums.h"

#include "devparse.h"
#include "layout.h"
#include "textclean.h"
#include "uuid.h"

/* push.c's names and marker line. */
static const char *const names[] = { LAYOUT_BUNDLE, LAYOUT_CERT, LAYOUT_KEY };
#define PENDING_LINE "SFTCA-RESTART-PENDING"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_devout");
	return 0;
}

/* in (n bytes) in reads of step bytes into out (outlen), checked after each. */
static size_t gather(const char *in, size_t n, size_t step, char *out, size_t outlen)
{
	size_t used = 0;

	for (size_t off = 0; off < n; off += step) {
		size_t k = n - off < step ? n - off : step, before = used;
		shell_out_append(out, outlen, &used, in + off, k);
		FUZZ_CHECK(used >= before && used < outlen);
		FUZZ_CHECK(out[used] == '\0' && used == (off + k < outlen - 1 ? off + k : outlen - 1));
	}
	return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[2048], small[64], whole[2048], sums[3][65], raw[512], msg[512], line[128];
	struct shell_stat st[3];
	const char *in;
	size_t step, n, used, k = 0;

	if (size < 1)
		return 0;
	step = data[0] < 192 ? (size_t)(data[0] % 64) + 1 : size;
	in = (const char *)data + 1;
	n = size - 1;

	/* As remote_sums (2048 bytes) and cleanup_temps (64) receive it. */
	out[0] = small[0] = whole[0] = '\0';
	used = gather(in, n, step, out, sizeof(out));
	gather(in, n, step, small, sizeof(small));
	gather(in, n, n ? n : 1, whole, sizeof(whole));
	/* The device's first bytes as they came, cut at the buffer. */
	k = n < sizeof(out) - 1 ? n : sizeof(out) - 1;
	FUZZ_CHECK(used == k && memcmp(out, in, k) == 0);
	FUZZ_CHECK(memcmp(out, whole, k + 1) == 0);
	k = n < sizeof(small) - 1 ? n : sizeof(small) - 1;
	FUZZ_CHECK(memcmp(small, in, k) == 0 && small[k] == '\0');

	shell_parse_sums(out, names, 3, sums);
	fuzz_check_sums(out, names, 3, sums);
	shell_parse_stats(out, names, 3, st);
	fuzz_check_stats(out, names, 3, st);
	(void)strstr(out, PENDING_LINE);
	/* check_temps: a digest the device printed for a temporary file. */
	if (sums[0][0] != '\0') {
		snprintf(line, sizeof(line), "%s  .%s.sftca-tmp", sums[0], names[0]);
		(void)strstr(out, line);
	}
	/* push's identity: show version's UUID line; only a canonical UUID. */
	{
		char id[40];
		if (shell_parse_version_uuid(out, id, sizeof(id)) == 0)
			FUZZ_CHECK(uuid_is_canonical(id));
		FUZZ_CHECK(shell_parse_version_uuid(out, id, 8) != 0 || strlen(id) < 8);
	}
	/* identify.c: show version's Model line, and an identity file. */
	{
		char id[40], model[128];
		if (shell_parse_version_model(out, model, sizeof(model)) == 0)
			FUZZ_CHECK(model[0] != '\0' && strlen(model) < sizeof(model) &&
				   !strchr(model, '\n'));
		if (shell_parse_identity_file(out, id, sizeof(id), model, sizeof(model)) == 0)
			FUZZ_CHECK(uuid_is_canonical(id));
		FUZZ_CHECK(strlen(model) < sizeof(model));
	}
	/* fail(): "listing DIR failed (status N): %.200s", escaped. */
	snprintf(raw, sizeof(raw), "listing %s failed (status %d): %.200s", "'/var/sf/peers/x'",
		 (int)data[0] - 1, out);
	text_escape(raw, msg, sizeof(msg));
	FUZZ_CHECK(fuzz_terminated(msg, sizeof(msg)));
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
		FUZZ_CHECK(*p >= 0x20 && *p != 0x7f && !(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f));
	return 0;
}
