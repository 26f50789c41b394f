#include "msg.h"

#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* format(printf, 2, 0): the callers' formats are checked at their call sites. */
void msg_vset(struct sftca_msg *m, const char *fmt, va_list ap)
{
	int n = vsnprintf(m->text, sizeof(m->text), fmt, ap);

	if (n < 0)
		m->text[0] = '\0';
	else if ((size_t)n >= sizeof(m->text))
		memcpy(m->text + sizeof(m->text) - 4, "...", 4);
}

void msg_set(struct sftca_msg *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg_vset(m, fmt, ap);
	va_end(ap);
}

int msg_fail(struct sftca_msg *m, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg_vset(m, fmt, ap);
	va_end(ap);
	return r;
}

void msg_prefix(struct sftca_msg *m, const char *fmt, ...)
{
	struct sftca_msg head, tail;
	va_list ap;

	va_start(ap, fmt);
	msg_vset(&head, fmt, ap);
	va_end(ap);
	if (m->text[0] != '\0') {
		memcpy(tail.text, m->text, sizeof(tail.text)); /* vsnprintf must not read what it writes */
		msg_set(m, "%s: %s", head.text, tail.text);
	} else {
		memcpy(m->text, head.text, sizeof(m->text));
	}
}

void msg_append(struct sftca_msg *m, const char *sep, const char *fmt, ...)
{
	struct sftca_msg item, head;
	va_list ap;

	va_start(ap, fmt);
	msg_vset(&item, fmt, ap);
	va_end(ap);
	if (m->text[0] == '\0') {
		memcpy(m->text, item.text, sizeof(m->text));
		return;
	}
	memcpy(head.text, m->text, sizeof(head.text)); /* vsnprintf must not read what it writes */
	msg_set(m, "%s%s%s", head.text, sep, item.text);
}

void msg_clear(struct sftca_msg *m)
{
	m->text[0] = '\0';
}

int msg_isset(const struct sftca_msg *m)
{
	return m->text[0] != '\0';
}

const char *msg_text(const struct sftca_msg *m, int r)
{
	return m->text[0] != '\0' ? m->text : sftca_strerror(r);
}
