/* sftca check on a file (client/certscan.c): arbitrary bytes as a
 * certificate file, PEM or DER. A file named by the user always yields at
 * least one result; every result keeps certscan.h's promises. */
#include "fuzz_common.h"

#include "certscan.h"

#include <sys/mman.h>
#include <unistd.h>

static int fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_certscan");
	/* One memory file, rewritten per input: no disk, no temp-file races. */
	fd = memfd_create("fuzz_certscan", 0);
	if (fd < 0) {
		perror("memfd_create");
		abort();
	}
	return 0;
}

/* certscan.h: all text but the path is valid UTF-8 without control characters. */
static int clean_text(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct certscan_opts o = { .warn_days = 90, .crit_days = 30, .now = 1733300000 };
	struct certscan *cs;
	char path[64];
	size_t n;

	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	cs = certscan_new(&o);
	FUZZ_CHECK(cs != NULL);
	FUZZ_CHECK(certscan_path(cs, path) == 0);
	n = certscan_count(cs);
	FUZZ_CHECK(n >= 1);
	FUZZ_CHECK(certscan_files(cs) <= 1);
	for (size_t i = 0; i < n; i++) {
		const struct cert_result *r = certscan_result(cs, i);

		FUZZ_CHECK(r->path != NULL);
		FUZZ_CHECK(r->state >= EXPIRY_OK && r->state <= EXPIRY_UNKNOWN);
		FUZZ_CHECK((r->state == EXPIRY_UNKNOWN) == (r->error != NULL));
		FUZZ_CHECK(fuzz_terminated(r->serial, sizeof(r->serial)));
		if (r->error != NULL) {
			FUZZ_CHECK(clean_text(r->error));
		} else {
			FUZZ_CHECK(r->subject != NULL && clean_text(r->subject));
			FUZZ_CHECK(r->issuer != NULL && clean_text(r->issuer));
			FUZZ_CHECK(r->days == expiry_days(r->not_after, 1733300000, &(int){0}));
		}
		FUZZ_CHECK(certscan_worse(certscan_worst(cs), r->state) == certscan_worst(cs));
	}
	certscan_free(cs);
	return 0;
}
