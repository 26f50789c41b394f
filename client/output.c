/* What the CLI hands back besides messages: times as people read them, and
 * files it writes whole or not at all. */
#include "client.h"

#include "atomicfile.h"
#include "log.h"

#include <libgen.h>
#include <time.h>

void fmt_time(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

int write_output_file(const char *path, const void *data, size_t len)
{
	char dir[4096], name[4096];
	struct af_file f;

	if ((size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir) ||
	    (size_t)snprintf(name, sizeof(name), "%s", path) >= sizeof(name)) {
		log_error("%s: path too long", path);
		return -1;
	}
	f.name = basename(name);
	f.data = data;
	f.len = len;
	f.mode = 0644;
	if (af_write(dirname(dir), &f, NULL) != 0) {
		log_error("%s could not be written", path);
		return -1;
	}
	return 0;
}
