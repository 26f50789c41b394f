/* devices.csv (client/devices.c, libcsv): arbitrary bytes as the file. A
 * file is either refused whole or every device in it is well formed; what
 * devices resolve writes back (devices_rewrite) reads as the same devices,
 * passwords byte for byte, with the first one's uuid filled. */
#include "fuzz_common.h"

#include "devices.h"
#include "fileio.h"
#include "uuid.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_devices");
	return 0;
}

#define FILLED "0a0b0c0d-0000-4000-8000-00000000f3c0"

/* The list written back parses to the same devices. */
static void check_rewrite(const uint8_t *data, size_t size, const struct device_list *l)
{
	const char **uuids = calloc(l->n, sizeof(*uuids));
	struct device_list b;
	char *out = NULL;
	size_t n = 0;

	FUZZ_CHECK(uuids != NULL);
	/* A UUID another row has would make the file a duplicate. */
	for (size_t i = 1; i < l->n; i++)
		if (strcmp(l->v[i].uuid, FILLED) == 0)
			goto out;
	uuids[0] = FILLED;
	FUZZ_CHECK(devices_rewrite("devices.csv", (const char *)data, size, uuids, l->n, &out, &n) == 0);
	FUZZ_CHECK(devices_parse("rewritten", out, n, &b) == 0);
	FUZZ_CHECK(b.n == l->n);
	for (size_t i = 0; i < l->n; i++) {
		const struct device *x = &l->v[i], *y = &b.v[i];
		FUZZ_CHECK(strcmp(x->name, y->name) == 0 && strcmp(x->ip, y->ip) == 0 &&
			   strcmp(x->user, y->user) == 0 && x->password_len == y->password_len &&
			   memcmp(x->password, y->password, x->password_len) == 0 &&
			   x->port == y->port && x->shell == y->shell &&
			   x->tunnel_port == y->tunnel_port);
		FUZZ_CHECK(strcmp(y->uuid, i == 0 ? FILLED : x->uuid) == 0);
	}
	devices_free(&b);
	secret_free(out, n);
out:
	free(uuids);
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
		check_rewrite(data, size, &l);
	} else {
		FUZZ_CHECK(l.n == 0 && l.v == NULL);
	}
	devices_free(&l);
	return 0;
}
