/* FAILED_PUSH files (client/failedpush.c), the vendor's and sftca's list
 * of files that did not reach a device: arbitrary bytes as the file, then
 * the lookups `sftca push --retry` makes for each device. */
#include "fuzz_common.h"

#include "failedpush.h"
#include "uuid.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_failedpush");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct failed_list l;

	if (failedpush_parse("FAILED_PUSH", (const char *)data, size, &l) != 0) {
		FUZZ_CHECK(l.n == 0 && l.v == NULL);
		failedpush_free(&l);
		return 0;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct failed_device *d = &l.v[i], *hit;
		FUZZ_CHECK(fuzz_terminated(d->uuid, sizeof(d->uuid)) && uuid_is_canonical(d->uuid));
		FUZZ_CHECK(fuzz_terminated(d->name, sizeof(d->name)) && d->name[0]);
		FUZZ_CHECK(fuzz_terminated(d->ip, sizeof(d->ip)) && d->ip[0]);
		/* Lines of one UUID are merged: the UUID finds exactly this entry. */
		FUZZ_CHECK(failedpush_find(&l, d->uuid, NULL, NULL) == d);
		FUZZ_CHECK(failedpush_find(&l, d->uuid, "no-such-name", "no-such-ip") == d);
		/* By name or IP: this device, or NULL when another UUID shares it. */
		hit = failedpush_find(&l, NULL, d->name, NULL);
		FUZZ_CHECK(hit == NULL || strcmp(hit->name, d->name) == 0);
		FUZZ_CHECK(hit == NULL || strcmp(hit->uuid, d->uuid) == 0);
		hit = failedpush_find(&l, "", "", d->ip);
		FUZZ_CHECK(hit == NULL || strcmp(hit->uuid, d->uuid) == 0);
		hit = failedpush_find(&l, NULL, d->ip, d->name);
		(void)hit;
	}
	FUZZ_CHECK(failedpush_find(&l, NULL, NULL, NULL) == NULL);
	FUZZ_CHECK(failedpush_find(NULL, "x", "y", "z") == NULL);
	failedpush_free(&l);
	return 0;
}
