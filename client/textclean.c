#include "textclean.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t text_utf8_seq(const unsigned char *s, size_t avail)
{
	size_t n;
	unsigned lo = 0x80, hi = 0xbf;

	if (avail == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	/* RFC 3629 table 3: no overlong forms, no surrogates, nothing past
	 * U+10FFFF; only the second byte's range varies. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

char *text_clean(const char *s, size_t len, int flags)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(len + 1);
	size_t i = 0, o = 0;

	if (out == NULL)
		return NULL;
	while (i < len) {
		size_t n = text_utf8_seq(p + i, len - i);

		if (n == 0 || p[i] == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		if (n == 1 && (p[i] < 0x20 || p[i] == 0x7f) &&
		    !((flags & TEXT_KEEP_CONTROLS) && (p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))) {
			out[o++] = '?';
			i++;
			continue;
		}
		/* C1 controls (U+0080..U+009F): some terminals act on them. */
		if (n == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0 && !(flags & TEXT_KEEP_CONTROLS)) {
			out[o++] = '?';
			i += 2;
			continue;
		}
		for (size_t k = 0; k < n; k++)
			out[o++] = (char)p[i + k];
		i += n;
	}
	out[o] = '\0';
	return out;
}

void text_escape(const char *s, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0, len = strlen(s);

	if (outlen == 0)
		return;
	while (i < len) {
		size_t n = text_utf8_seq(p + i, len - i);
		char esc[5];
		size_t elen = 0;

		if (n == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7f)))
			elen = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", p[i]);
		else if (n == 1 && p[i] == '\\')
			elen = (size_t)snprintf(esc, sizeof(esc), "\\\\");
		else if (n == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0) /* C1 as UTF-8 */
			elen = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", p[i + 1]);
		if (elen) {
			if (o + elen >= outlen)
				break;
			memcpy(out + o, esc, elen);
			o += elen;
			i += n ? n : 1;
			continue;
		}
		if (o + n >= outlen)
			break;
		memcpy(out + o, p + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
}
