/* devices.csv (client/devices.c, libcsv): arbitrary bytes as the file. A
 * file is either refused whole or every device in it is well formed. */
#include "fuzz_common.h"

#include "devices.h"
#include "uuid.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_devices");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct device_list l;

	if (devices_parse("devices.csv", (const char *)data, size, &l) == 0) {
		FUZZ_CHECK(l.n > 0 && l.v != NULL);
		for (size_t i = 0; i < l.n; i++) {
			const struct device *d = &l.v[i];
			FUZZ_CHECK(fuzz_terminated(d->name, sizeof(d->name)) && d->name[0]);
			FUZZ_CHECK(fuzz_terminated(d->ip, sizeof(d->ip)) && d->ip[0]);
			FUZZ_CHECK(fuzz_terminated(d->user, sizeof(d->user)) && d->user[0]);
			FUZZ_CHECK(fuzz_terminated(d->uuid, sizeof(d->uuid)));
			FUZZ_CHECK(d->uuid[0] == '\0' || uuid_is_canonical(d->uuid));
			FUZZ_CHECK(d->password != NULL && strlen(d->password) == d->password_len);
			FUZZ_CHECK(d->port >= 1 && d->port <= 65535);
			FUZZ_CHECK(d->tunnel_port >= 1 && d->tunnel_port <= 65535);
			FUZZ_CHECK(d->line >= 1);
			FUZZ_CHECK(device_shell_name(d->shell) != NULL);
			/* Device names and UUIDs are unique within a file. */
			for (size_t j = 0; j < i; j++) {
				FUZZ_CHECK(strcmp(l.v[j].name, d->name) != 0);
				FUZZ_CHECK(!d->uuid[0] || strcmp(l.v[j].uuid, d->uuid) != 0);
			}
		}
	} else {
		FUZZ_CHECK(l.n == 0 && l.v == NULL);
	}
	devices_free(&l);
	return 0;
}
