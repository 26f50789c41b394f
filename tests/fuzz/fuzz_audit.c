/* sftca-signer verify-audit (signer/audit.c): arbitrary bytes as an audit
 * log and its audit.head, written to two memfds. Byte 0 < 255 is the length
 * of the head file, the last bytes of the input (the log comes before); 255:
 * the whole rest is the log and there is no head file. Verification returns 0 or
 * SFTCA_ERR_VERIFY with a reason; when it returns 0, every byte of the log
 * belongs to a checked line and the count of lines is the count of records. */
#include "fuzz_common.h"

#include "audit.h"
#include "errors.h"

#include <sys/mman.h>
#include <unistd.h>

static int logfd = -1, headfd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_audit");
	logfd = memfd_create("fuzz_audit_log", 0);
	headfd = memfd_create("fuzz_audit_head", 0);
	if (logfd < 0 || headfd < 0) {
		perror("memfd_create");
		abort();
	}
	return 0;
}

static void fill(int fd, const uint8_t *data, size_t size)
{
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char logp[64], headp[64], why[512];
	size_t loglen, nl = 0;
	unsigned long lines = 12345;
	int r;

	if (size < 1)
		return 0;
	loglen = data[0] == 255 ? size - 1 : size - 1 - (data[0] < size - 1 ? data[0] : size - 1);
	fill(logfd, data + 1, loglen);
	fill(headfd, data + 1 + loglen, size - 1 - loglen);
	snprintf(logp, sizeof(logp), "/proc/self/fd/%d", logfd);
	if (data[0] == 255)
		snprintf(headp, sizeof(headp), "/dev/null/audit.head"); /* cannot exist */
	else
		snprintf(headp, sizeof(headp), "/proc/self/fd/%d", headfd);
	memset(why, 'x', sizeof(why));
	r = audit_verify_file(logp, headp, &lines, why, sizeof(why));
	log_debug("verify-audit: %d, %lu lines: %s", r, lines, why);
	FUZZ_CHECK(fuzz_terminated(why, sizeof(why)));
	for (size_t i = 0; i < loglen; i++)
		nl += data[1 + i] == '\n';
	if (r == 0) {
		FUZZ_CHECK(why[0] == '\0');
		/* Nothing unchecked: the log is whole lines, one record each. */
		FUZZ_CHECK(loglen == 0 || data[loglen] == '\n');
		FUZZ_CHECK(memchr(data + 1, '\0', loglen) == NULL);
		FUZZ_CHECK(lines == nl);
	} else {
		FUZZ_CHECK(r == SFTCA_ERR_VERIFY);
		FUZZ_CHECK(why[0] != '\0');
	}
	return 0;
}
