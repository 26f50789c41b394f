/* The checks fuzz_devparse and fuzz_devout make of shell_parse_sums and
 * shell_parse_stats. */
#ifndef SFTCA_FUZZ_SUMS_H
#define SFTCA_FUZZ_SUMS_H

#include "fuzz_common.h"

#include "devparse.h"

/* Each of the n digests is empty or 64 lowercase hex digits that text
 * holds as "HEX  NAME" on a line of its own. */
static inline void fuzz_check_sums(const char *text, const char *const *names, int n,
				   char (*sums)[65])
{
	for (int i = 0; i < n; i++) {
		char line[128];
		const char *p;
		size_t ll;

		FUZZ_CHECK(fuzz_terminated(sums[i], 65));
		if (sums[i][0] == '\0')
			continue;
		FUZZ_CHECK(strlen(sums[i]) == 64);
		FUZZ_CHECK(strspn(sums[i], "0123456789abcdef") == 64);
		ll = (size_t)snprintf(line, sizeof(line), "%s  %s", sums[i], names[i]);
		for (p = strstr(text, line); p != NULL; p = strstr(p + 1, line))
			if ((p == text || p[-1] == '\n') && (p[ll] == '\0' || p[ll] == '\n'))
				break;
		FUZZ_CHECK(p != NULL);
	}
}

/* Each present entry has a mode of at most 07777 and 32-bit ids, and text
 * holds a line "SFTCA-STAT ... NAME" for it. */
static inline void fuzz_check_stats(const char *text, const char *const *names, int n,
				    const struct shell_stat *st)
{
	for (int i = 0; i < n; i++) {
		char tail[128];
		const char *p;
		size_t tl;

		if (!st[i].present)
			continue;
		FUZZ_CHECK(st[i].mode <= 07777);
		FUZZ_CHECK(st[i].uid <= 0xffffffffUL && st[i].gid <= 0xffffffffUL);
		tl = (size_t)snprintf(tail, sizeof(tail), " %s", names[i]);
		for (p = strstr(text, tail); p != NULL; p = strstr(p + 1, tail)) {
			const char *l = p;
			while (l > text && l[-1] != '\n')
				l--;
			if ((p[tl] == '\0' || p[tl] == '\n') && strncmp(l, SHELL_STAT_TAG " ", 11) == 0)
				break;
		}
		FUZZ_CHECK(p != NULL);
	}
}

#endif
