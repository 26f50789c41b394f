/* The message for whoever asked: why an operation failed (or what it did),
 * in words a user can act on. One type for every caller-facing text, so
 * modules stop passing (char *, size_t) pairs and arrays of assorted sizes.
 * A text longer than the buffer ends in "..." instead of being cut silently. */
#ifndef SFTCA_MSG_H
#define SFTCA_MSG_H

#include <stdarg.h>
#include <stddef.h>

#define SFTCA_MSG_MAX 512

struct sftca_msg {
	char text[SFTCA_MSG_MAX];
};

/* Replace the text. */
void msg_set(struct sftca_msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void msg_vset(struct sftca_msg *m, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Set the text and return r: `return msg_fail(m, SFTCA_ERR_INVALID, "...")`. */
int msg_fail(struct sftca_msg *m, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefix the current text: "context: previous text". */
void msg_prefix(struct sftca_msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append to the text, after sep when there is text already: a list of
 * problems, "a; b; c". */
void msg_append(struct sftca_msg *m, const char *sep, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void msg_clear(struct sftca_msg *m);
/* 1 when a text is set. */
int msg_isset(const struct sftca_msg *m);
/* The text, or sftca_strerror(r) when none was set. Never NULL. */
const char *msg_text(const struct sftca_msg *m, int r);

#endif
