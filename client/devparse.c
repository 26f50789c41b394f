#include "devparse.h"
#include "uuid.h"

#include <openssl/crypto.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keep one byte of the shell's output, dropping carriage returns and
 * terminal escape sequences (CSI, OSC and the other strings up to BEL or
 * ST, two-byte escapes) as they arrive, in one pass: a sequence split
 * across reads is followed by the state, not by searching the buffer again.
 * NUL bytes go too: a search for the end marker would stop at one and miss
 * the marker behind it until the device is given up. Other control
 * characters stay; whatever is printed is escaped then. */
static void filter_byte(struct shellbuf *c, unsigned char b)
{
	switch (c->esc) {
	case ESC_START:
		c->esc = b == '[' ? ESC_CSI
			 : b == ']' || b == 'P' || b == 'X' || b == '^' || b == '_' ? ESC_STRING
										     : ESC_NONE;
		return;
	case ESC_CSI:
		if (b >= 0x40 && b <= 0x7e)
			c->esc = ESC_NONE;
		return;
	case ESC_STRING_ESC:
		if (b == '\\') {
			c->esc = ESC_NONE;
			return;
		}
		c->esc = ESC_START;
		filter_byte(c, b);
		return;
	case ESC_STRING:
		if (b == 0x07)
			c->esc = ESC_NONE;
		else if (b == 0x1b)
			c->esc = ESC_STRING_ESC;
		return;
	case ESC_NONE:
		break;
	}
	if (b == 0x1b)
		c->esc = ESC_START;
	else if (b != '\r' && b != '\0')
		c->buf[c->len++] = (char)b;
}

void shellbuf_append(struct shellbuf *c, const char *data, size_t n)
{
	if (c->len + n + 1 > SHELLBUF_MAX) {
		c->overflow = 1;
		return;
	}
	if (c->len + n + 1 > c->cap) {
		/* Not realloc: the terminal echoes what was sent (a key's
		 * base64 among it), and the old block must be wiped, not freed
		 * as it is. */
		size_t cap = (c->len + n + 1) * 2;
		char *nb = malloc(cap);
		if (nb == NULL) {
			c->overflow = 1;
			return;
		}
		if (c->buf) {
			memcpy(nb, c->buf, c->len + 1);
			OPENSSL_cleanse(c->buf, c->cap);
			free(c->buf);
		}
		c->buf = nb;
		c->cap = cap;
	}
	for (size_t i = 0; i < n; i++)
		filter_byte(c, (unsigned char)data[i]);
	c->buf[c->len] = '\0';
}

char *shellbuf_find_marker(struct shellbuf *c, const char *marker)
{
	size_t ml = strlen(marker), from = c->scanned >= ml ? c->scanned - ml + 1 : 0;
	char *m = c->buf ? strstr(c->buf + from, marker) : NULL;

	if (m == NULL)
		c->scanned = c->len;
	return m;
}

int shellbuf_prompt(const struct shellbuf *c, const char *const *prompts, int n)
{
	size_t end = c->len;

	if (c->buf == NULL)
		return -1;
	while (end > 0 && c->buf[end - 1] == ' ')
		end--;
	for (int i = 0; i < n; i++) {
		size_t pl = strlen(prompts[i]);
		if (end >= pl && strncmp(c->buf + end - pl, prompts[i], pl) == 0)
			return i;
	}
	return -1;
}

void shellbuf_reset(struct shellbuf *c)
{
	c->len = 0;
	c->scanned = 0;
	if (c->buf)
		c->buf[0] = '\0';
}

void shellbuf_free(struct shellbuf *c)
{
	if (c->buf) {
		OPENSSL_cleanse(c->buf, c->cap);
		free(c->buf);
	}
	memset(c, 0, sizeof(*c));
}

int shell_status_complete(const char *after)
{
	return *after >= '0' && *after <= '9' && strstr(after, "__") != NULL;
}

int shell_extract(char *buf, const char *begin, const char *end, char *out, size_t outlen,
		  int *status)
{
	char *b, *e = strstr(buf, end);

	*status = (int)strtol(e + strlen(end), NULL, 10);
	*e = '\0';
	if ((b = strstr(buf, begin)) == NULL)
		return -1;
	b += strlen(begin);
	if (outlen) {
		size_t n = strlen(b);
		snprintf(out, outlen, "%.*s", (int)(n < outlen - 1 ? n : outlen - 1), b);
	}
	return 0;
}

void shell_out_append(char *out, size_t outlen, size_t *used, const char *data, size_t n)
{
	size_t take;

	if (outlen == 0)
		return;
	take = n < outlen - 1 - *used ? n : outlen - 1 - *used;
	memcpy(out + *used, data, take);
	*used += take;
	out[*used] = '\0';
}

void shell_parse_sums(const char *out, const char *const *names, int n, char (*sums)[65])
{
	const char *line = out;

	for (int i = 0; i < n; i++)
		sums[i][0] = '\0';
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		for (int i = 0; i < n; i++) {
			char want[128];
			size_t wl = (size_t)snprintf(want, sizeof(want), "  %s", names[i]);
			if (len == 64 + wl && strncmp(line + 64, want, wl) == 0 &&
			    strspn(line, "0123456789abcdef") >= 64) {
				memcpy(sums[i], line, 64);
				sums[i][64] = '\0';
			}
		}
		line = nl ? nl + 1 : NULL;
	}
}

/* A number in base (8 or 10) of at most max, ended by a space, at *p:
 * 0 and *p after the space, or -1. */
static int parse_num(const char **p, int base, unsigned long max, unsigned long *v)
{
	const char *q = *p;

	*v = 0;
	if (*q < '0' || *q >= '0' + base)
		return -1;
	for (; *q >= '0' && *q < '0' + base; q++) {
		*v = *v * (unsigned long)base + (unsigned long)(*q - '0');
		if (*v > max)
			return -1;
	}
	if (*q != ' ')
		return -1;
	*p = q + 1;
	return 0;
}

void shell_parse_stats(const char *out, const char *const *names, int n, struct shell_stat *st)
{
	static const char tag[] = SHELL_STAT_TAG " ";

	for (int i = 0; i < n; i++)
		st[i] = (struct shell_stat){ 0 };
	for (const char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		const char *p = line, *nl;
		unsigned long mode, uid, gid;
		size_t len;

		if (strncmp(p, tag, sizeof(tag) - 1) != 0)
			continue;
		p += sizeof(tag) - 1;
		if (parse_num(&p, 8, 07777, &mode) != 0 || parse_num(&p, 10, 0xffffffffUL, &uid) != 0 ||
		    parse_num(&p, 10, 0xffffffffUL, &gid) != 0)
			continue;
		nl = strchr(p, '\n');
		len = nl ? (size_t)(nl - p) : strlen(p);
		for (int i = 0; i < n; i++)
			if (strlen(names[i]) == len && strncmp(p, names[i], len) == 0)
				st[i] = (struct shell_stat){ 1, (unsigned)mode, uid, gid };
	}
}

/* The value of the "KEY   : value" line of show version's output (blanks
 * around the key and the colon allowed), or NULL. */
static const char *version_field(const char *out, const char *key)
{
	size_t kl = strlen(key);

	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *p = l;

		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, key, kl) != 0)
			continue;
		for (p += kl; *p == ' ' || *p == '\t'; p++)
			;
		if (*p++ != ':')
			continue;
		while (*p == ' ' || *p == '\t')
			p++;
		return p;
	}
	return NULL;
}

/* A canonical UUID at p, alone up to the end of its line, lowercased into
 * uuid; 0 or -1. */
static int line_uuid(const char *p, char *uuid, size_t uuidlen)
{
	char v[40];
	size_t n = 0;

	while (n < sizeof(v) - 1 && (isxdigit((unsigned char)*p) || *p == '-'))
		v[n++] = (char)tolower((unsigned char)*p++);
	v[n] = '\0';
	while (*p == ' ' || *p == '\t' || *p == '\r')
		p++;
	if ((*p != '\0' && *p != '\n') || !uuid_is_canonical(v) || n + 1 > uuidlen)
		return -1;
	memcpy(uuid, v, n + 1);
	return 0;
}

int shell_parse_version_uuid(const char *out, char *uuid, size_t uuidlen)
{
	const char *p = version_field(out, "UUID");

	return p ? line_uuid(p, uuid, uuidlen) : -1;
}

int shell_parse_version_model(const char *out, char *model, size_t modellen)
{
	const char *p = version_field(out, "Model");
	size_t n = 0;

	if (p == NULL || modellen == 0)
		return -1;
	while (p[n] != '\0' && p[n] != '\n' && p[n] != '\r')
		n++;
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= modellen)
		return -1;
	memcpy(model, p, n);
	model[n] = '\0';
	return 0;
}

int shell_parse_identity_file(const char *out, char *uuid, size_t uuidlen, char *model,
			      size_t modellen)
{
	const char *p = out;

	if (modellen > 0 && shell_parse_version_model(out, model, modellen) != 0)
		model[0] = '\0';
	if (shell_parse_version_uuid(out, uuid, uuidlen) == 0)
		return 0;
	/* Or the UUID alone on the first line that is not blank. */
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return line_uuid(p, uuid, uuidlen);
}
